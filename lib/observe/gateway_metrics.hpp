// The gateway's own metrics: the families it declares in its registry, the series resolved per
// route, listener and upstream (once, at start), and each worker's way to count into its shard.
//
// Adding a metric for a new feature is one line here (a family member, declared in the
// constructor) and one at the place that counts it:
//   if (WorkerMetrics* m = ExchangeAccess::metrics(ex)) m->gateway.waf_matches.inc(m->shard, {rule});
// Label values must come from a bounded set (names from the configuration, enums): every family
// has a cap past which combinations land in the "_overflow" series.
#pragma once
#include <atomic>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>

#include "gatehouse/circuit_breaker.hpp"
#include "gatehouse/exchange.hpp"
#include "gatehouse/metrics.hpp"
#include "gatehouse/retry_policy.hpp"
#include "gatehouse/upstream.hpp"
#include "observe/redis_metrics.hpp"

namespace gatehouse::detail {

/// GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, other.
inline constexpr std::size_t kMethodClasses = 8;
/// 1xx .. 5xx.
inline constexpr std::size_t kStatusClasses = 5;
/// The route label of requests that matched no route (404, 405, or refused before routing).
inline constexpr std::string_view kNoRouteLabel = "_none";
/// The status counted for a request whose client went away before any response (as nginx's 499).
inline constexpr unsigned kNoResponseStatus = 499;

std::size_t method_class(std::string_view method) noexcept;
std::size_t status_class(unsigned status) noexcept;
std::string_view method_class_name(std::size_t c) noexcept;
std::string_view status_class_name(std::size_t c) noexcept;

/// Series of one route, resolved once.
struct RouteMetrics {
  MetricSeries requests[kMethodClasses][kStatusClasses];
  MetricSeries duration, request_bytes, response_bytes;
};

struct ListenerMetrics {
  MetricSeries connections_active, connections_total, tls_success, tls_failure;
  MetricSeries client_cert_verified, client_cert_rejected;
  MetricSeries refused_listener_limit, refused_client_limit, accept_backoffs;
};

/// The "condition" label of gatehouse_upstream_retries_total for a failed attempt:
/// connect_failure, reset, timeout, or the response status ("503").
inline constexpr std::size_t kRetryConditions = 3;  // the ones without a status

struct UpstreamMetrics {
  std::string name;
  MetricSeries duration, connect_failures, timeouts;
  MetricSeries retries[kRetryConditions];  // by condition: connect_failure, reset, timeout
  MetricSeries breaker_trips[kBreakerLimitCount];
  MetricSeries retry_budget_exhausted;
};

class GatewayMetrics {
 public:
  explicit GatewayMetrics(std::shared_ptr<MetricsRegistry> registry);
  ~GatewayMetrics();
  GatewayMetrics(const GatewayMetrics&) = delete;
  GatewayMetrics& operator=(const GatewayMetrics&) = delete;

  const std::shared_ptr<MetricsRegistry>& registry() const noexcept { return registry_; }

  /// The series of a route, listener or upstream label value (created on first use; the address
  /// stays valid as long as this object). Takes locks: call at start, not per request.
  const RouteMetrics& route(std::string_view name);
  const ListenerMetrics& listener(std::string_view name);
  const UpstreamMetrics& upstream(std::string_view name);
  /// The series of requests no route matched (route="_none").
  const RouteMetrics& no_route() const noexcept { return *no_route_; }

  /// An upstream pool's idle-connection count (written by its worker, read by the scrape's
  /// callback). The pool calls unwatch_pool before it goes away.
  void watch_pool(std::string upstream, const std::atomic<std::size_t>* idle);
  void unwatch_pool(const std::atomic<std::size_t>* idle);
  /// An upstream whose circuit breakers the scrape reports (gauges read at scrape time, as long
  /// as the upstream lives).
  void watch_breakers(const std::shared_ptr<const Upstream>& upstream);
  /// A Redis connection the scrape reports (gatehouse_redis_*, read from its stats()).
  void watch_redis(std::string name, const std::shared_ptr<RedisClient>& client) { redis_.watch(std::move(name), client); }

  // The families (Prometheus names in gateway_metrics.cpp). One line each for new features.
  Counter requests;            // {route, method_class, status_class}
  Histogram request_duration;  // {route}
  Counter request_bytes;       // {route}
  Counter response_bytes;      // {route}
  Gauge connections_active;    // {listener}
  Counter connections_total;   // {listener}
  Counter tls_handshakes;      // {listener, result}
  Counter connections_refused;  // {listener, reason}
  Counter accept_backoffs;      // {listener}
  Histogram upstream_duration;       // {upstream}
  Counter upstream_connect_failures;  // {upstream}
  Counter upstream_timeouts;          // {upstream}
  Counter upstream_retries;           // {upstream, condition}
  Counter upstream_breaker_trips;     // {upstream, limit}
  Counter upstream_retry_budget_exhausted;  // {upstream}
  Counter auth;                       // {verifier, result}
  Counter protocol_violations;        // {reason}: requests refused by the HTTP front
  Counter rate_limit_decisions;       // {route, limit, outcome}
  Counter rate_limit_evictions;       // {limit}
  Counter ip_filter;                  // {filter, verdict}
  Counter client_certificates;        // {listener, result}
  Counter waf_requests;               // {route, result}
  Counter waf_rule_matches;           // {route, rule}
  Histogram waf_evaluation_duration;  // {}
  Gauge waf_pending;                  // {}
  MetricSeries waf_evaluation_series, waf_pending_series;  // their one series each

 private:
  struct PoolWatch;
  std::shared_ptr<MetricsRegistry> registry_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<RouteMetrics>, std::less<>> routes_;
  std::map<std::string, std::unique_ptr<ListenerMetrics>, std::less<>> listeners_;
  std::map<std::string, std::unique_ptr<UpstreamMetrics>, std::less<>> upstreams_;
  const RouteMetrics* no_route_ = nullptr;
  std::shared_ptr<PoolWatch> pools_;
  MetricCallbackHandle pool_idle_;
  struct BreakerWatch;
  std::shared_ptr<BreakerWatch> breakers_;
  MetricCallbackHandle breaker_in_use_, breaker_limit_;
  RedisMetrics redis_;
};

/// One worker's side: its shard, and the gateway's families. From the worker's thread only.
struct WorkerMetrics {
  GatewayMetrics& gateway;
  MetricsShard& shard;

  /// At the end of an exchange: requests, duration, bytes. `route` null: no route matched.
  /// `status`: the status the client got; kNoResponseStatus when it went away before any.
  void exchange_done(const Exchange& ex, const RouteMetrics* route, unsigned status) noexcept;
  void connection_opened(const ListenerMetrics& l) noexcept;
  void connection_closed(const ListenerMetrics& l) noexcept;
  void tls_handshake(const ListenerMetrics& l, bool ok) noexcept;
  /// A connection closed right after accept: over max_connections_per_client (`per_client`) or
  /// max_connections.
  void connection_refused(const ListenerMetrics& l, bool per_client) noexcept;
  /// Accepting paused for want of file descriptors (once per episode).
  void accept_backoff(const ListenerMetrics& l) noexcept;
  /// A response head arrived `seconds` after the attempt started.
  void upstream_answered(const UpstreamMetrics& u, double seconds) noexcept;
  void upstream_failed(const UpstreamMetrics& u, AttemptFailure f) noexcept;
  /// A request's upstream deadline passed while it was being sent.
  void upstream_timed_out(const UpstreamMetrics& u) noexcept;
  /// A failed attempt is tried again; `status`: the response's, when failure == status.
  void upstream_retry(const UpstreamMetrics& u, AttemptFailure failure, unsigned status) noexcept;
  /// A circuit breaker refused something (a max_retries trip: a retry not made).
  void breaker_tripped(const UpstreamMetrics& u, BreakerLimit limit) noexcept;
  /// The retry budget refused a retry.
  void retry_budget_exhausted(const UpstreamMetrics& u) noexcept;
};

/// The "result" label of gatehouse_auth_total for a verifier's error ("expired", "bad_signature",
/// ... for the gatehouse.token category, "other" for any other error).
std::string_view auth_result_label(std::error_code e) noexcept;
/// Counts an authentication outcome, when the exchange runs in a gateway with metrics on.
void count_auth(const Exchange& ex, std::string_view verifier, std::string_view result) noexcept;
/// Counts a request the HTTP front refused; `reason` is one of a fixed set of words
/// (observe/security_events_http.hpp: violation_class).
void count_protocol_violation(const Exchange& ex, std::string_view reason) noexcept;
/// Counts a rate-limit decision (outcome: allowed, limited, shadow_limited, ...), likewise.
void count_rate_limit(const Exchange& ex, std::string_view limit, std::string_view outcome) noexcept;
/// Counts a tracked key forgotten while still inside its burst window (the table was full).
void count_rate_limit_eviction(const Exchange& ex, std::string_view limit) noexcept;
/// Counts a client certificate on an mTLS listener (verified or rejected); no-op when either is null.
void count_client_certificate(WorkerMetrics* m, const ListenerMetrics* l, bool verified) noexcept;
/// Counts an IP filter's verdict (a route's, through the exchange; a listener's, through the worker).
void count_ip_filter(WorkerMetrics* m, std::string_view filter, std::string_view verdict) noexcept;

}  // namespace gatehouse::detail
