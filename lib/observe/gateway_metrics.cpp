#include "observe/gateway_metrics.hpp"

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/exchange_access.hpp"
#include "gatehouse/auth/token_error.hpp"

namespace gatehouse::detail {
namespace {

// Caps on label-value combinations (see MetricOptions::max_series). Route, listener and upstream
// names come from the configuration; the caps only matter for unusually large ones, whose extra
// names are then counted as "_overflow".
constexpr std::size_t kMaxRoutes = 256;
constexpr std::size_t kMaxListeners = 64;
constexpr std::size_t kMaxUpstreams = 256;
constexpr std::size_t kMaxAuthSeries = 1024;
constexpr std::size_t kMaxRateLimitSeries = 2048;
constexpr std::size_t kMaxWafRuleSeries = 1000;

}  // namespace

std::size_t method_class(std::string_view m) noexcept {
  switch (m.size()) {
    case 3:
      if (m == "GET") return 0;
      if (m == "PUT") return 3;
      break;
    case 4:
      if (m == "HEAD") return 1;
      if (m == "POST") return 2;
      break;
    case 5:
      if (m == "PATCH") return 5;
      break;
    case 6:
      if (m == "DELETE") return 4;
      break;
    case 7:
      if (m == "OPTIONS") return 6;
      break;
    default:
      break;
  }
  return 7;
}

std::string_view method_class_name(std::size_t c) noexcept {
  static constexpr std::string_view names[kMethodClasses] = {"GET", "HEAD", "POST", "PUT",
                                                             "DELETE", "PATCH", "OPTIONS", "other"};
  return names[std::min(c, kMethodClasses - 1)];
}

std::size_t status_class(unsigned status) noexcept {
  if (status < 200) return 0;
  if (status >= 500) return 4;
  return status / 100 - 1;
}

std::string_view status_class_name(std::size_t c) noexcept {
  static constexpr std::string_view names[kStatusClasses] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  return names[std::min(c, kStatusClasses - 1)];
}

struct GatewayMetrics::BreakerWatch {
  std::mutex mu;
  std::vector<std::weak_ptr<const Upstream>> upstreams;
};

struct GatewayMetrics::PoolWatch {
  std::mutex mu;
  std::vector<std::pair<std::string, const std::atomic<std::size_t>*>> pools;
};

GatewayMetrics::GatewayMetrics(std::shared_ptr<MetricsRegistry> registry)
    : registry_(std::move(registry)),
      pools_(std::make_shared<PoolWatch>()),
      breakers_(std::make_shared<BreakerWatch>()),
      redis_(*registry_) {
  MetricsRegistry& r = *registry_;
  requests = r.counter({"gatehouse_requests_total",
                        "Requests answered, by route, method class (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, "
                        "other) and status class (1xx..5xx). route=\"_none\": no route matched.",
                        {"route", "method_class", "status_class"},
                        kMaxRoutes * kMethodClasses * kStatusClasses});
  request_duration = r.histogram({"gatehouse_request_duration_seconds",
                                  "Time from the first byte of a request to the end of its response, by route.",
                                  {"route"},
                                  kMaxRoutes});
  request_bytes = r.counter({"gatehouse_request_bytes_total",
                             "Bytes received from clients (heads and bodies), by route.", {"route"}, kMaxRoutes});
  response_bytes = r.counter({"gatehouse_response_bytes_total",
                              "Bytes sent to clients (heads and bodies), by route.", {"route"}, kMaxRoutes});
  connections_active = r.gauge({"gatehouse_downstream_connections_active",
                                "Client connections open, by listener.", {"listener"}, kMaxListeners});
  connections_total = r.counter({"gatehouse_downstream_connections_total",
                                 "Client connections accepted, by listener.", {"listener"}, kMaxListeners});
  tls_handshakes = r.counter({"gatehouse_tls_handshakes_total",
                              "TLS handshakes with clients, by listener and result (success, failure).",
                              {"listener", "result"},
                              kMaxListeners * 2});
  connections_refused = r.counter({"gatehouse_downstream_connections_refused_total",
                                   "Client connections closed right after accept, by listener and reason "
                                   "(max_connections, max_connections_per_client).",
                                   {"listener", "reason"},
                                   kMaxListeners * 2});
  accept_backoffs = r.counter({"gatehouse_accept_backoffs_total",
                               "Times a listener stopped accepting for a while because the process ran out of "
                               "file descriptors (or socket buffers).",
                               {"listener"},
                               kMaxListeners});
  upstream_duration = r.histogram({"gatehouse_upstream_duration_seconds",
                                   "Time from the start of an attempt at an upstream (connect included) to its "
                                   "response head, by upstream.",
                                   {"upstream"},
                                   kMaxUpstreams});
  upstream_connect_failures = r.counter({"gatehouse_upstream_connect_failures_total",
                                         "Connections to upstream endpoints that failed (refused, reset, TLS).",
                                         {"upstream"},
                                         kMaxUpstreams});
  upstream_timeouts = r.counter({"gatehouse_upstream_timeouts_total",
                                 "Upstream attempts that timed out (connect, send or response head).",
                                 {"upstream"},
                                 kMaxUpstreams});
  upstream_retries = r.counter({"gatehouse_upstream_retries_total",
                                "Upstream attempts made again after a failed one, as the retry policy decided, by "
                                "upstream and the condition of the failed attempt (connect_failure, reset, timeout, "
                                "or the response status).",
                                {"upstream", "condition"},
                                kMaxUpstreams * 8});
  upstream_breaker_trips = r.counter({"gatehouse_upstream_breaker_trips_total",
                                      "Requests refused (503) or retries not made because an upstream's circuit "
                                      "breaker was at its limit, by upstream and limit (max_connections, "
                                      "max_pending_requests, max_requests, max_retries).",
                                      {"upstream", "limit"},
                                      kMaxUpstreams * kBreakerLimitCount});
  upstream_retry_budget_exhausted = r.counter({"gatehouse_upstream_retry_budget_exhausted_total",
                                               "Retries the retry policy wanted that the upstream's retry budget "
                                               "refused, by upstream.",
                                               {"upstream"},
                                               kMaxUpstreams});
  auth = r.counter({"gatehouse_auth_total",
                    "Authentication outcomes by verifier and result (success, missing, ambiguous, or why the "
                    "credential was refused: expired, bad_signature, ...).",
                    {"verifier", "result"},
                    kMaxAuthSeries});
  protocol_violations = r.counter({"gatehouse_protocol_violations_total",
                                   "Requests refused by the HTTP front (malformed, ambiguous framing, bad path or "
                                   "Host, over a limit, too slow), by class.",
                                   {"reason"},
                                   16});
  rate_limit_decisions = r.counter({"gatehouse_rate_limit_decisions_total",
                                    "Rate-limit decisions by route, limit name and outcome (allowed, limited, "
                                    "shadow_limited; with a shared store also local_fallback, failed_open, "
                                    "failed_closed, cached_limited).",
                                    {"route", "limit", "outcome"},
                                    kMaxRateLimitSeries});
  rate_limit_evictions = r.counter({"gatehouse_rate_limit_evictions_total",
                                    "Keys a local rate limit forgot while still inside their burst window, "
                                    "because its table was full (each got a full burst again).",
                                    {"limit"},
                                    kMaxRateLimitSeries});
  ip_filter = r.counter({"gatehouse_ip_filter_total",
                         "IP filter decisions by filter and verdict (allowed, allow_listed, deny_listed, "
                         "not_allow_listed); the refused ones are deny_listed and not_allow_listed.",
                         {"filter", "verdict"},
                         kMaxAuthSeries});
  client_certificates = r.counter({"gatehouse_client_certificates_total",
                                   "Client certificates presented on mTLS listeners, by listener and result "
                                   "(verified, rejected).",
                                   {"listener", "result"},
                                   kMaxListeners * 2});
  waf_requests = r.counter({"gatehouse_waf_requests_total",
                            "Requests the WAF decided on, by route and result (pass, blocked, detected, "
                            "body_too_large, body_error, overloaded, fail_open).",
                            {"route", "result"},
                            kMaxRoutes * 7});
  waf_rule_matches = r.counter({"gatehouse_waf_rule_matches_total",
                                "WAF rule matches by route and rule id (bounded: extra combinations are "
                                "counted under _overflow).",
                                {"route", "rule"},
                                kMaxWafRuleSeries});
  waf_evaluation_duration = r.histogram({"gatehouse_waf_evaluation_seconds",
                                         "CPU-side time of one WAF evaluation on the WAF pool (queueing excluded).",
                                         {},
                                         1},
                                        {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05, 0.1, 0.25, 1});
  waf_pending = r.gauge({"gatehouse_waf_pending",
                         "Requests waiting for a WAF verdict (queued or being evaluated), all workers.", {}, 1});
  waf_evaluation_series = waf_evaluation_duration.series();
  waf_pending_series = waf_pending.series();
  // Idle pooled connections: read at scrape time, no cost per request.
  std::weak_ptr<PoolWatch> watch = pools_;
  pool_idle_ = r.gauge_callback({"gatehouse_upstream_pool_idle_connections",
                                 "Idle keep-alive connections to upstreams, by upstream (all workers).",
                                 {"upstream"},
                                 kMaxUpstreams},
                                [watch] {
                                  std::vector<MetricSample> samples;
                                  auto w = watch.lock();
                                  if (!w) return samples;
                                  std::lock_guard lock(w->mu);
                                  for (const auto& [name, idle] : w->pools)
                                    samples.push_back({{name}, static_cast<double>(idle->load(std::memory_order_relaxed))});
                                  return samples;
                                });
  // Circuit breakers: read from the upstreams' shared counters at scrape time.
  std::weak_ptr<BreakerWatch> bwatch = breakers_;
  auto breaker_samples = [bwatch](bool limits) {
    std::vector<MetricSample> samples;
    auto w = bwatch.lock();
    if (!w) return samples;
    std::lock_guard lock(w->mu);
    std::erase_if(w->upstreams, [](const auto& u) { return u.expired(); });
    // A reload may leave an upstream replaced under the same name in use for a while: what both
    // hold is summed, the limit is the newest one's.
    std::vector<std::string> named;
    for (auto it = w->upstreams.rbegin(); it != w->upstreams.rend(); ++it) {
      const auto up = it->lock();
      if (!up) continue;
      if (limits && std::find(named.begin(), named.end(), up->name()) != named.end()) continue;
      named.push_back(up->name());
      const CircuitBreakerState s = up->circuit_breaker();
      for (std::size_t i = 0; i < kBreakerLimitCount; ++i) {
        const auto l = static_cast<BreakerLimit>(i);
        samples.push_back({{up->name(), std::string(to_string(l))},
                           static_cast<double>(limits ? s.limit(l) : s.in_use(l))});
      }
    }
    return samples;
  };
  breaker_in_use_ = r.gauge_callback({"gatehouse_upstream_breaker_in_use",
                                      "What upstreams hold now against each circuit-breaker limit (connections "
                                      "open, requests pending and in flight, retries in progress), all workers.",
                                      {"upstream", "limit"},
                                      kMaxUpstreams * kBreakerLimitCount},
                                     [breaker_samples] { return breaker_samples(false); });
  breaker_limit_ = r.gauge_callback({"gatehouse_upstream_breaker_limit",
                                     "Upstreams' circuit-breaker limits, by upstream and limit.",
                                     {"upstream", "limit"},
                                     kMaxUpstreams * kBreakerLimitCount},
                                    [breaker_samples] { return breaker_samples(true); });
  no_route_ = &route(kNoRouteLabel);
}

GatewayMetrics::~GatewayMetrics() = default;

const RouteMetrics& GatewayMetrics::route(std::string_view name) {
  std::lock_guard lock(mu_);
  if (auto it = routes_.find(name); it != routes_.end()) return *it->second;
  auto m = std::make_unique<RouteMetrics>();
  for (std::size_t mc = 0; mc < kMethodClasses; ++mc)
    for (std::size_t sc = 0; sc < kStatusClasses; ++sc)
      m->requests[mc][sc] = requests.series({name, method_class_name(mc), status_class_name(sc)});
  m->duration = request_duration.series({name});
  m->request_bytes = request_bytes.series({name});
  m->response_bytes = response_bytes.series({name});
  return *routes_.emplace(std::string(name), std::move(m)).first->second;
}

const ListenerMetrics& GatewayMetrics::listener(std::string_view name) {
  std::lock_guard lock(mu_);
  if (auto it = listeners_.find(name); it != listeners_.end()) return *it->second;
  auto m = std::make_unique<ListenerMetrics>();
  m->connections_active = connections_active.series({name});
  m->connections_total = connections_total.series({name});
  m->tls_success = tls_handshakes.series({name, "success"});
  m->tls_failure = tls_handshakes.series({name, "failure"});
  m->client_cert_verified = client_certificates.series({name, "verified"});
  m->client_cert_rejected = client_certificates.series({name, "rejected"});
  m->refused_listener_limit = connections_refused.series({name, "max_connections"});
  m->refused_client_limit = connections_refused.series({name, "max_connections_per_client"});
  m->accept_backoffs = accept_backoffs.series({name});
  return *listeners_.emplace(std::string(name), std::move(m)).first->second;
}

const UpstreamMetrics& GatewayMetrics::upstream(std::string_view name) {
  std::lock_guard lock(mu_);
  if (auto it = upstreams_.find(name); it != upstreams_.end()) return *it->second;
  auto m = std::make_unique<UpstreamMetrics>();
  m->duration = upstream_duration.series({name});
  m->connect_failures = upstream_connect_failures.series({name});
  m->timeouts = upstream_timeouts.series({name});
  m->name = std::string(name);
  static constexpr std::string_view conditions[kRetryConditions] = {"connect_failure", "reset", "timeout"};
  for (std::size_t i = 0; i < kRetryConditions; ++i) m->retries[i] = upstream_retries.series({name, conditions[i]});
  for (std::size_t i = 0; i < kBreakerLimitCount; ++i)
    m->breaker_trips[i] = upstream_breaker_trips.series({name, to_string(static_cast<BreakerLimit>(i))});
  m->retry_budget_exhausted = upstream_retry_budget_exhausted.series({name});
  return *upstreams_.emplace(std::string(name), std::move(m)).first->second;
}

void GatewayMetrics::watch_pool(std::string upstream, const std::atomic<std::size_t>* idle) {
  std::lock_guard lock(pools_->mu);
  pools_->pools.emplace_back(std::move(upstream), idle);
}

void GatewayMetrics::watch_breakers(const std::shared_ptr<const Upstream>& upstream) {
  std::lock_guard lock(breakers_->mu);
  for (const auto& w : breakers_->upstreams)
    if (w.lock() == upstream) return;
  breakers_->upstreams.push_back(upstream);
}

void GatewayMetrics::unwatch_pool(const std::atomic<std::size_t>* idle) {
  std::lock_guard lock(pools_->mu);
  std::erase_if(pools_->pools, [idle](const auto& p) { return p.second == idle; });
}

// ---------------------------------------------------------------------------------------------
// Per worker
// ---------------------------------------------------------------------------------------------

void WorkerMetrics::exchange_done(const Exchange& ex, const RouteMetrics* route, unsigned status) noexcept {
  if (!route) route = &gateway.no_route();
  const std::size_t mc = method_class(ex.request().method());
  const std::size_t sc = status_class(status);
  gateway.requests.inc(shard, route->requests[mc][sc]);
  const std::chrono::duration<double> took = Exchange::clock::now() - ex.start_time();
  gateway.request_duration.observe(shard, route->duration, took.count());
  gateway.request_bytes.inc(shard, route->request_bytes, ex.bytes_received());
  gateway.response_bytes.inc(shard, route->response_bytes, ex.bytes_sent());
}

void WorkerMetrics::connection_opened(const ListenerMetrics& l) noexcept {
  gateway.connections_total.inc(shard, l.connections_total);
  gateway.connections_active.add(shard, l.connections_active, 1);
}

void WorkerMetrics::connection_closed(const ListenerMetrics& l) noexcept {
  gateway.connections_active.add(shard, l.connections_active, -1);
}

void WorkerMetrics::tls_handshake(const ListenerMetrics& l, bool ok) noexcept {
  gateway.tls_handshakes.inc(shard, ok ? l.tls_success : l.tls_failure);
}

void WorkerMetrics::connection_refused(const ListenerMetrics& l, bool per_client) noexcept {
  gateway.connections_refused.inc(shard, per_client ? l.refused_client_limit : l.refused_listener_limit);
}

void WorkerMetrics::accept_backoff(const ListenerMetrics& l) noexcept {
  gateway.accept_backoffs.inc(shard, l.accept_backoffs);
}

void WorkerMetrics::upstream_answered(const UpstreamMetrics& u, double seconds) noexcept {
  gateway.upstream_duration.observe(shard, u.duration, seconds);
}

void WorkerMetrics::upstream_failed(const UpstreamMetrics& u, AttemptFailure f) noexcept {
  switch (f) {
    case AttemptFailure::connect_failed:
      gateway.upstream_connect_failures.inc(shard, u.connect_failures);
      break;
    case AttemptFailure::connect_timeout:
    case AttemptFailure::timeout:
      gateway.upstream_timeouts.inc(shard, u.timeouts);
      break;
    case AttemptFailure::send_failed:
    case AttemptFailure::reset:
    case AttemptFailure::status:
      break;
  }
}

void WorkerMetrics::upstream_timed_out(const UpstreamMetrics& u) noexcept {
  gateway.upstream_timeouts.inc(shard, u.timeouts);
}

void WorkerMetrics::upstream_retry(const UpstreamMetrics& u, AttemptFailure failure, unsigned status) noexcept {
  switch (failure) {
    case AttemptFailure::connect_failed:
    case AttemptFailure::connect_timeout:
      gateway.upstream_retries.inc(shard, u.retries[0]);
      return;
    case AttemptFailure::send_failed:
    case AttemptFailure::reset:
      gateway.upstream_retries.inc(shard, u.retries[1]);
      return;
    case AttemptFailure::timeout:
      gateway.upstream_retries.inc(shard, u.retries[2]);
      return;
    case AttemptFailure::status:
      break;
  }
  // Statuses are the few a policy retries: looked up in the shard's cache, no lock once seen.
  char digits[4] = {};
  const unsigned s = status % 1000;
  digits[0] = static_cast<char>('0' + s / 100);
  digits[1] = static_cast<char>('0' + s / 10 % 10);
  digits[2] = static_cast<char>('0' + s % 10);
  try {
    gateway.upstream_retries.inc(shard, {u.name, std::string_view(digits, 3)});
  } catch (...) {
    // Out of memory for the shard's cache: this count is lost, the retry is not.
  }
}

void WorkerMetrics::breaker_tripped(const UpstreamMetrics& u, BreakerLimit limit) noexcept {
  gateway.upstream_breaker_trips.inc(shard, u.breaker_trips[static_cast<std::size_t>(limit)]);
}

void WorkerMetrics::retry_budget_exhausted(const UpstreamMetrics& u) noexcept {
  gateway.upstream_retry_budget_exhausted.inc(shard, u.retry_budget_exhausted);
}

std::string_view auth_result_label(std::error_code e) noexcept {
  using auth::TokenError;
  if (!e) return "success";
  if (e.category() != auth::token_category()) return "other";
  switch (static_cast<TokenError>(e.value())) {
    case TokenError::malformed: return "malformed";
    case TokenError::unsupported_algorithm: return "unsupported_algorithm";
    case TokenError::bad_signature: return "bad_signature";
    case TokenError::expired: return "expired";
    case TokenError::not_yet_valid: return "not_yet_valid";
    case TokenError::wrong_issuer: return "wrong_issuer";
    case TokenError::wrong_audience: return "wrong_audience";
    case TokenError::missing_claim: return "missing_claim";
    case TokenError::wrong_type: return "wrong_type";
    case TokenError::unknown_key: return "unknown_key";
    case TokenError::key_source_unavailable: return "key_source_unavailable";
    case TokenError::token_too_large: return "token_too_large";
    case TokenError::inactive: return "inactive";
    case TokenError::forbidden_header: return "forbidden_header";
    case TokenError::internal: return "internal";
    case TokenError::introspection_unavailable: return "introspection_unavailable";
  }
  return "other";
}

void count_auth(const Exchange& ex, std::string_view verifier, std::string_view result) noexcept {
  WorkerMetrics* m = ExchangeAccess::metrics(ex);
  if (!m) return;
  try {
    m->gateway.auth.inc(m->shard, {verifier, result});
  } catch (...) {
    // Out of memory for the shard's cache: this count is lost, the request is not.
  }
}

void count_protocol_violation(const Exchange& ex, std::string_view reason) noexcept {
  WorkerMetrics* m = ExchangeAccess::metrics(ex);
  if (!m) return;
  try {
    m->gateway.protocol_violations.inc(m->shard, {reason});
  } catch (...) {
    // As count_auth: the count is lost, the request is not.
  }
}

void count_rate_limit(const Exchange& ex, std::string_view limit, std::string_view outcome) noexcept {
  WorkerMetrics* m = ExchangeAccess::metrics(ex);
  if (!m) return;
  const std::string_view route = ex.route_name().empty() ? kNoRouteLabel : ex.route_name();
  try {
    m->gateway.rate_limit_decisions.inc(m->shard, {route, limit, outcome});
  } catch (...) {
    // Out of memory for the shard's cache: this count is lost, the decision is not.
  }
}

void count_rate_limit_eviction(const Exchange& ex, std::string_view limit) noexcept {
  WorkerMetrics* m = ExchangeAccess::metrics(ex);
  if (!m) return;
  try {
    m->gateway.rate_limit_evictions.inc(m->shard, {limit});
  } catch (...) {
  }
}
void count_client_certificate(WorkerMetrics* m, const ListenerMetrics* l, bool verified) noexcept {
  if (m && l) m->gateway.client_certificates.inc(m->shard, verified ? l->client_cert_verified : l->client_cert_rejected);
}

void count_ip_filter(WorkerMetrics* m, std::string_view filter, std::string_view verdict) noexcept {
  if (!m) return;
  try {
    m->gateway.ip_filter.inc(m->shard, {filter, verdict});
  } catch (...) {
    // Out of memory for the shard's cache: this count is lost, the decision stands.
  }
}

}  // namespace gatehouse::detail
