// An HTTP/1 session: one client connection (plain or TLS). It reads a request head, checks and
// routes it, runs the pipeline with itself as the client side, and decides whether the connection
// carries another request.
#pragma once
#include "server/worker.hpp"

namespace gatehouse::detail {

/// Starts serving `socket`, accepted on listener `listener` of `snapshot`, on the worker's
/// executor. Each request runs on the worker's snapshot of the moment it arrives (a reload moves
/// the connection over at its next request).
/// `peer`: the socket's remote address; `slot`: its place in the listener's connection counts,
/// given back when the session ends.
void start_http1_session(Worker& worker, WorkerSnapshotPtr snapshot, std::size_t listener, tcp::socket socket,
                         const tcp::endpoint& peer, ListenerSlot slot);

}  // namespace gatehouse::detail
