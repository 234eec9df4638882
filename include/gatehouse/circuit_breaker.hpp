// Circuit breaking: limits on what one upstream may hold at once, so that an overloaded service
// is answered 503 at once, instead of piling up connections and requests that make it worse.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gatehouse {

/// The limits of one upstream. They hold for all the gateway's workers together: N workers never
/// multiply them. A request refused by one gets 503 at once, with a JSON body naming the limit:
///   {"error":"upstream_overloaded","reason":"max_requests","upstream":"users",...}
/// The defaults are Envoy's.
struct CircuitBreakerLimits {
  /// Open connections to the upstream's endpoints, idle pooled ones included. At the limit, a
  /// request that needs a new connection waits for one (counted as pending) until a connection
  /// frees up or connect_timeout passes (then 503, reason "max_connections").
  std::uint32_t max_connections = 1024;
  /// Requests waiting for a connection: for a free connection slot, or while it connects.
  std::uint32_t max_pending_requests = 1024;
  /// Requests in flight to the upstream, from the first attempt until the response ends.
  std::uint32_t max_requests = 1024;
  /// Retries in progress (waiting out the backoff, or the retried attempt until its response
  /// head). A retry past it is not made, and the client gets the failed attempt's answer. Not
  /// used when the retry policy has a budget (RetrySettings::budget), which replaces it.
  std::uint32_t max_retries = 3;
};

/// Which limit refused something.
enum class BreakerLimit : unsigned char { max_connections, max_pending_requests, max_requests, max_retries };
inline constexpr std::size_t kBreakerLimitCount = 4;

/// "max_connections", "max_pending_requests", "max_requests", "max_retries".
std::string_view to_string(BreakerLimit limit) noexcept;

/// One upstream's breakers at one moment (Upstream::circuit_breaker()).
struct CircuitBreakerState {
  CircuitBreakerLimits limits{};
  /// What is held now, over all workers.
  std::uint64_t connections = 0;
  std::uint64_t pending_requests = 0;
  std::uint64_t requests = 0;
  std::uint64_t retries = 0;
  /// Times each limit refused something since the upstream was created, by BreakerLimit.
  std::uint64_t trips[kBreakerLimitCount] = {};
  /// Retries the retry budget refused.
  std::uint64_t retry_budget_exhausted = 0;

  std::uint64_t in_use(BreakerLimit l) const noexcept {
    switch (l) {
      case BreakerLimit::max_connections: return connections;
      case BreakerLimit::max_pending_requests: return pending_requests;
      case BreakerLimit::max_requests: return requests;
      case BreakerLimit::max_retries: return retries;
    }
    return 0;
  }
  std::uint64_t limit(BreakerLimit l) const noexcept {
    switch (l) {
      case BreakerLimit::max_connections: return limits.max_connections;
      case BreakerLimit::max_pending_requests: return limits.max_pending_requests;
      case BreakerLimit::max_requests: return limits.max_requests;
      case BreakerLimit::max_retries: return limits.max_retries;
    }
    return 0;
  }
  std::uint64_t tripped(BreakerLimit l) const noexcept { return trips[static_cast<std::size_t>(l)]; }
};

}  // namespace gatehouse
