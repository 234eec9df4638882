// The answer to a request that an upstream's circuit breaker refused.
#pragma once
#include "core/origin_call.hpp"
#include "gatehouse/circuit_breaker.hpp"
#include "gatehouse/upstream.hpp"
#include "proxy/circuit_breaker.hpp"

namespace gatehouse::detail {

struct UpstreamMetrics;
struct WorkerMetrics;

/// 503 at once, with a JSON body naming the limit:
///   {"error":"upstream_overloaded","reason":"max_requests","upstream":"users","status":503,"request_id":"..."}
/// Counted in the metrics (`m` and `um` may be null) and logged, at most once a second per
/// upstream (an overload trips thousands of times a second; the metrics count them all).
OriginResult refuse_overloaded(Exchange& ex, const Upstream& upstream, CircuitBreaker& breaker, BreakerLimit limit,
                               WorkerMetrics* m, const UpstreamMetrics* um);

/// Counts (and perhaps logs) a trip that is not answered with 503: a retry not made.
void note_trip(const Upstream& upstream, CircuitBreaker& breaker, BreakerLimit limit, WorkerMetrics* m,
               const UpstreamMetrics* um) noexcept;

}  // namespace gatehouse::detail
