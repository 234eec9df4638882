// An HTTP/1 session: one client connection (plain or TLS). It reads a request head, checks and
// routes it, runs the pipeline with itself as the client side, and decides whether the connection
// carries another request.
#pragma once
#include "server/worker.hpp"

namespace gatehouse::detail {

/// Starts serving `socket`, accepted on `listener`, on the worker's executor.
void start_http1_session(Worker& worker, const ListenerRuntime& listener, tcp::socket socket);

}  // namespace gatehouse::detail
