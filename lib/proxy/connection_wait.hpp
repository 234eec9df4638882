// Waiting for a connection at an upstream's max_connections (a pending request).
#pragma once
#include <chrono>
#include <memory>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include "proxy/upstream_pool.hpp"

namespace gatehouse::detail {

struct ConnectionWait {
  ConnectionSlot slot;                           ///< room for a new connection: connect now
  std::unique_ptr<UpstreamConnection> pooled;  ///< or a connection to the endpoint, given back meanwhile
  bool timed_out() const noexcept { return !slot && !pooled; }
};

/// The upstream is at max_connections: waits for a pooled connection to `endpoint` (when
/// `pooled_ok`) or a free slot, until `deadline` (then neither, and a max_connections trip is
/// counted). Idle connections of this worker to other endpoints are closed for their slots.
asio::awaitable<ConnectionWait> wait_for_connection(UpstreamPool& pool, CircuitBreaker& breaker,
                                                    const tcp::endpoint& endpoint, bool pooled_ok,
                                                    std::chrono::steady_clock::time_point deadline,
                                                    asio::any_io_executor ex);

}  // namespace gatehouse::detail
