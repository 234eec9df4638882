#include "proxy/overload_answer.hpp"

#include <chrono>
#include <string>

#include "core/chain.hpp"
#include "observe/gateway_metrics.hpp"
#include "util/log.hpp"

namespace gatehouse::detail {

void note_trip(const Upstream& upstream, CircuitBreaker& breaker, BreakerLimit limit, WorkerMetrics* m,
               const UpstreamMetrics* um) noexcept {
  if (m && um) m->breaker_tripped(*um, limit);
  if (!breaker.take_log_turn(std::chrono::steady_clock::now())) return;
  const CircuitBreakerState s = breaker.state();
  const std::string in_use = std::to_string(s.in_use(limit));
  const std::string trips = std::to_string(s.tripped(limit));
  log(nullptr, LogLevel::warning, "upstream circuit breaker tripped (logged at most once a second per upstream)",
      {{"upstream", upstream.name()}, {"limit", to_string(limit)}, {"in_use", in_use}, {"trips_total", trips}});
}

OriginResult refuse_overloaded(Exchange& ex, const Upstream& upstream, CircuitBreaker& breaker, BreakerLimit limit,
                               WorkerMetrics* m, const UpstreamMetrics* um) {
  note_trip(upstream, breaker, limit, m, um);
  std::string body = "{\"error\":\"upstream_overloaded\",\"reason\":\"";
  body += to_string(limit);
  body += "\",\"upstream\":\"";
  append_json_escaped(body, upstream.name());
  body += "\",\"status\":503,\"request_id\":\"";
  append_json_escaped(body, ex.request_id());
  body += "\"}\n";
  Response r;
  r.set_status(503);
  r.set_body(std::move(body), "application/json");
  r.headers().set("cache-control", "no-store");
  ex.response() = std::move(r);
  return OriginResult{OriginResult::Kind::answered};
}

}  // namespace gatehouse::detail
