#include "gatehouse/middleware/waf.hpp"

#include <algorithm>
#include <charconv>
#include <atomic>
#include <mutex>

#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "core/exchange_access.hpp"
#include "gatehouse/security_event.hpp"
#include "observe/gateway_metrics.hpp"
#include "waf/waf_engine.hpp"
#include "waf/waf_pool.hpp"

namespace gatehouse {
namespace {

using detail::WafRequest;
using detail::WafVerdict;
using clock = std::chrono::steady_clock;

// One request's evaluation, handed to the pool and back. The fields above `done` belong to
// whichever side holds the job (the worker before submitting and after it is done, the pool while
// it runs); `mutex` guards the hand-back.
class WafJob final : public detail::WafTask, public std::enable_shared_from_this<WafJob> {
 public:
  WafJob(std::shared_ptr<const detail::WafEngine> engine, std::shared_ptr<const WafOptions> options,
         detail::WafTransactionPolicy policy)
      : engine_(std::move(engine)), options_(std::move(options)), policy_(policy) {}

  WafRequest request;
  bool response_phase = false;
  int response_status = 0;
  std::string response_header_bytes;
  std::vector<WafRequest::Field> response_headers;
  clock::time_point deadline{};

  WafVerdict verdict;
  double seconds = 0;
  bool evaluated = false;  // false: the deadline passed in the queue, nothing was evaluated
  bool failed = false;     // the evaluation threw (out of memory)

  void run() noexcept override {
    evaluated = false;
    if (clock::now() < deadline) {
      evaluated = true;
      const auto start = clock::now();
      try {
        if (!tx_) tx_ = std::make_unique<detail::WafTransaction>(engine_, policy_);
        verdict = response_phase ? tx_->inspect_response(response_status, response_header_bytes, response_headers)
                                 : tx_->inspect_request(request);
        // Freed here, not on the worker: a CRS transaction holds many small allocations.
        if (response_phase || !options_->inspect_response_headers) tx_.reset();
      } catch (...) {
        failed = true;
      }
      seconds = std::chrono::duration<double>(clock::now() - start).count();
    }
    std::lock_guard lock(mutex_);
    done_ = true;
    if (abandoned_) return;
    try {
      asio::post(executor_, [self = shared_from_this()] {
        if (self->waiter_) self->waiter_->cancel();
      });
    } catch (...) {
      // Out of memory: the waiting request ends at its time limit.
    }
  }

  enum class Outcome : unsigned char { done, queue_full, timed_out };

  /// On the worker: queues this job and waits (without blocking the worker) for its end or the
  /// deadline, whichever comes first.
  asio::awaitable<Outcome> evaluate_on(detail::WafPool& pool) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_at(deadline);
    {
      std::lock_guard lock(mutex_);
      done_ = abandoned_ = false;
      executor_ = timer.get_executor();
    }
    waiter_ = &timer;
    // Whatever ends this wait (even the worker's io_context going away), the pool must not post to
    // a timer that is gone.
    struct Unwait {
      WafJob& job;
      ~Unwait() {
        std::lock_guard lock(job.mutex_);
        job.waiter_ = nullptr;
        if (!job.done_) job.abandoned_ = true;
      }
    } unwait{*this};
    if (!pool.try_submit(shared_from_this())) co_return Outcome::queue_full;
    co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    std::lock_guard lock(mutex_);
    co_return done_ && evaluated ? Outcome::done : Outcome::timed_out;
  }

 private:
  std::shared_ptr<const detail::WafEngine> engine_;
  std::shared_ptr<const WafOptions> options_;  // keeps policy_'s exclusions alive, says if a phase follows
  detail::WafTransactionPolicy policy_;
  std::unique_ptr<detail::WafTransaction> tx_;  // kept between the request and response phases
  std::mutex mutex_;
  bool done_ = false;
  bool abandoned_ = false;
  asio::any_io_executor executor_;
  asio::steady_timer* waiter_ = nullptr;  // on the worker's executor only
};

// The job of a request whose response headers are inspected too.
struct WafPending {
  std::shared_ptr<WafJob> job;
};

std::string_view severity_name(int s) noexcept {
  static constexpr std::string_view names[] = {"EMERGENCY", "ALERT", "CRITICAL", "ERROR",
                                               "WARNING",   "NOTICE", "INFO",   "DEBUG"};
  return s >= 0 && s < 8 ? names[s] : "UNKNOWN";
}

std::string_view mode_name(bool detect) noexcept { return detect ? "detect" : "block"; }

}  // namespace

namespace detail {
struct WafState {
  std::shared_ptr<const WafOptions> options;
  std::shared_ptr<const detail::WafEngine> engine;
  std::unique_ptr<detail::WafPool> pool;
  std::atomic<std::uint64_t> inspected{0}, blocked{0}, detected{0}, overloaded{0};

  /// What applies to this route; null: not inspected.
  const WafRouteOptions* route(std::string_view name) const noexcept {
    auto it = options->routes.find(name);
    return it == options->routes.end() ? nullptr : &it->second;
  }
  bool detect_only(const WafRouteOptions* r) const noexcept {
    return (r && r->mode ? *r->mode : options->mode) == WafMode::detect;
  }

  static std::string_view route_label(const Exchange& ex) noexcept {
    return ex.route_name().empty() ? kNoRouteLabel : ex.route_name();
  }

  static void count(const Exchange& ex, std::string_view result) noexcept {
    detail::WorkerMetrics* m = detail::ExchangeAccess::metrics(ex);
    if (!m) return;
    try {
      m->gateway.waf_requests.inc(m->shard, {route_label(ex), result});
    } catch (...) {
    }
  }

  static void count_matches(const Exchange& ex, const WafVerdict& v) noexcept {
    detail::WorkerMetrics* m = detail::ExchangeAccess::metrics(ex);
    if (!m) return;
    try {
      char id[16];
      for (const auto& match : v.matches) {
        auto [end, ec] = std::to_chars(id, id + sizeof id, match.rule_id);
        m->gateway.waf_rule_matches.inc(m->shard, {route_label(ex), std::string_view(id, end - id)});
      }
    } catch (...) {
    }
  }

  // One event per request that matched anything (or was refused without an evaluation).
  static void report(Exchange& ex, const WafVerdict& v, bool refused, unsigned status, bool detect,
                     std::string_view action, std::string reason) {
    if (!ex.security_events()) return;
    SecurityEvent e;
    e.kind = SecurityEventKind::waf_match;
    e.outcome = refused ? SecurityEventOutcome::failure : SecurityEventOutcome::unknown;
    e.action = std::string(action);
    e.http_status = refused ? status : 0;
    std::string ids;
    int highest = 8;
    for (const auto& m : v.matches) {
      if (!ids.empty()) ids += ',';
      ids += std::to_string(m.rule_id);
      highest = std::min(highest, m.severity);
    }
    // The rule that decided: the first attack rule (the scoring rule only sums the others).
    for (const auto& m : v.matches) {
      if (m.rule_id != 949110 || v.matches.size() == 1) {
        e.rule_id = std::to_string(m.rule_id);
        e.rule_name = m.message;
        break;
      }
    }
    if (reason.empty()) reason = e.rule_name;
    e.reason = std::move(reason);
    e.label("rule_ids", ids);
    if (highest < 8) e.label("severity", std::string(severity_name(highest)));
    e.label("anomaly_score", std::to_string(v.anomaly_score));
    e.label("mode", std::string(mode_name(detect)));
    std::size_t n = 0;
    for (const auto& m : v.matches) {
      if (++n > 12) break;  // an event has at most 16 labels
      e.label("rule_" + std::to_string(m.rule_id), m.message);
    }
    ex.report(std::move(e));
  }
};
}  // namespace detail

namespace {

// The session removes the framing fields with the hop-by-hop ones before any middleware runs (the
// proxy writes its own), but the CRS judges a request by them: a POST without Content-Length or
// Transfer-Encoding scores as a protocol violation (rule 920180), which with the numeric Host of
// most API clients (920350) blocks every JSON or form POST. The WAF gets back the framing the
// parser read; a body-carrying method without either field has an empty body (RFC 9112 6.3).
void add_framing(const Request& req, WafRequest& r) {
  char digits[24];
  const long long length = req.content_length();
  if (length < 0) {
    r.add_header("Transfer-Encoding", "chunked");
  } else if (length > 0 || req.method() == "POST" || req.method() == "PUT" || req.method() == "PATCH") {
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, length);
    r.add_header("Content-Length", std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }
}

void copy_request(const Exchange& ex, WafRequest& r) {
  const Request& req = ex.request();
  r.client_ip = ex.client_address().to_string();
  r.client_port = ex.peer().port();
  r.method.assign(req.method());
  r.target.assign(req.target());
  r.version = req.version_minor() == 0 ? "1.0" : "1.1";
  r.header_bytes.reserve(req.headers().byte_size());
  r.headers.reserve(req.headers().size());
  for (const auto& f : req.headers()) r.add_header(f.name, f.value);
  add_framing(req, r);
}

// Metrics of a finished evaluation, on the worker.
void observe(const Exchange& ex, double seconds) noexcept {
  if (detail::WorkerMetrics* m = detail::ExchangeAccess::metrics(ex))
    m->gateway.waf_evaluation_duration.observe(m->shard, m->gateway.waf_evaluation_series, seconds);
}

struct PendingGauge {
  const Exchange& ex;
  explicit PendingGauge(const Exchange& e) noexcept : ex(e) { add(1); }
  ~PendingGauge() { add(-1); }
  void add(double d) const noexcept {
    if (detail::WorkerMetrics* m = detail::ExchangeAccess::metrics(ex))
      m->gateway.waf_pending.add(m->shard, m->gateway.waf_pending_series, d);
  }
};

}  // namespace

Waf::Waf(WafOptions options) : state_(std::make_shared<detail::WafState>()) {
  if (options.paranoia_level < 1 || options.paranoia_level > 4)
    throw std::invalid_argument("waf: paranoia_level must be 1 to 4");
  if (options.inbound_anomaly_threshold < 1 || options.outbound_anomaly_threshold < 1)
    throw std::invalid_argument("waf: anomaly thresholds must be at least 1");
  if (options.request_body_limit == 0) throw std::invalid_argument("waf: request_body_limit must be positive");
  if (options.threads == 0 || options.threads > 64) throw std::invalid_argument("waf: threads must be 1 to 64");
  if (options.queue_size == 0) throw std::invalid_argument("waf: queue_size must be positive");
  if (options.time_limit.count() <= 0) throw std::invalid_argument("waf: time_limit must be positive");
  state_->engine = detail::WafEngine::load(options);
  state_->options = std::make_shared<const WafOptions>(std::move(options));
  state_->pool = std::make_unique<detail::WafPool>(state_->options->threads, state_->options->queue_size);
}

Waf::~Waf() = default;

const WafOptions& Waf::options() const noexcept { return *state_->options; }

WafStats Waf::stats() const noexcept {
  return {state_->inspected.load(), state_->blocked.load(), state_->detected.load(), state_->overloaded.load()};
}

std::size_t Waf::pending() const noexcept { return state_->pool->pending(); }

namespace {

asio::awaitable<Flow> inspect_request(std::shared_ptr<detail::WafState> s, Exchange& ex, const WafRouteOptions* route);
asio::awaitable<Flow> inspect_response(std::shared_ptr<detail::WafState> s, Exchange& ex, std::shared_ptr<WafJob> job,
                                       bool detect);

}  // namespace

Flow Waf::on_request(Exchange& ex) const {
  const WafRouteOptions* route = state_->route(ex.route_name());
  if (route && !route->enabled) return Flow::next();
  return Flow::later(inspect_request(state_, ex, route));
}

Flow Waf::on_response(Exchange& ex) const {
  if (!state_->options->inspect_response_headers) return Flow::next();
  WafPending* pending = ex.find<WafPending>();
  if (!pending || !pending->job) return Flow::next();
  std::shared_ptr<WafJob> job = std::move(pending->job);
  return Flow::later(inspect_response(state_, ex, std::move(job), state_->detect_only(state_->route(ex.route_name()))));
}

namespace {

// Queue full or time limit passed: refuse (503) or pass uninspected, as configured.
Flow overloaded(detail::WafState& s, Exchange& ex, WafJob::Outcome outcome) {
  s.overloaded.fetch_add(1, std::memory_order_relaxed);
  const bool open = s.options->fail_open;
  detail::WafState::count(ex, open ? "fail_open" : "overloaded");
  const std::string why = outcome == WafJob::Outcome::queue_full ? "WAF queue full" : "WAF time limit passed";
  detail::WafState::report(ex, WafVerdict{}, !open, open ? 0 : 503, s.detect_only(s.route(ex.route_name())),
                     open ? "waf-fail-open" : "waf-overloaded", why + (open ? ": passed uninspected" : ": refused"));
  if (open) return Flow::next();
  return Flow::respond(Status::service_unavailable, "the request could not be inspected in time");
}

// Applies a verdict: metrics, the event, and the answer.
Flow decide(detail::WafState& s, Exchange& ex, const WafVerdict& v, bool detect) {
  detail::WafState::count_matches(ex, v);
  if (v.intervene && !detect) {
    s.blocked.fetch_add(1, std::memory_order_relaxed);
    const unsigned status = v.status >= 400 && v.status < 600 ? static_cast<unsigned>(v.status) : 403u;
    detail::WafState::count(ex, status == 400 ? "body_error" : "blocked");
    detail::WafState::report(ex, v, true, status, detect, "waf-blocked", {});
    return Flow::respond(static_cast<Status>(status), "request refused by the web application firewall");
  }
  if (v.over_threshold) {
    s.detected.fetch_add(1, std::memory_order_relaxed);
    detail::WafState::count(ex, "detected");
    detail::WafState::report(ex, v, false, 0, detect, "waf-detected", {});
  } else {
    detail::WafState::count(ex, "pass");
    if (!v.matches.empty()) detail::WafState::report(ex, v, false, 0, detect, "waf-matched", {});
  }
  return Flow::next();
}

asio::awaitable<Flow> inspect_request(std::shared_ptr<detail::WafState> s, Exchange& ex, const WafRouteOptions* route) {
  const WafOptions& o = *s->options;
  const bool detect = s->detect_only(route);
  const BufferedBody body = co_await ex.read_request_body(o.request_body_limit);
  if (body.failed_status) co_return Flow::respond(static_cast<Status>(body.failed_status));
  if (!body.complete && o.oversize_body == WafOversizeBody::reject) {
    s->blocked.fetch_add(1, std::memory_order_relaxed);
    detail::WafState::count(ex, "body_too_large");
    detail::WafState::report(ex, WafVerdict{}, true, 413, detect, "waf-blocked",
                       "request body over the WAF inspection limit");
    co_return Flow::respond(Status::payload_too_large, "request body over the inspection limit");
  }
  detail::WafTransactionPolicy policy{detect, &o.exclude, route ? &route->exclude : nullptr};
  auto job = std::make_shared<WafJob>(s->engine, s->options, policy);
  copy_request(ex, job->request);
  job->request.body.assign(body.data);
  job->request.body_truncated = !body.complete;
  job->deadline = clock::now() + o.time_limit;
  s->inspected.fetch_add(1, std::memory_order_relaxed);
  WafJob::Outcome outcome;
  {
    PendingGauge gauge(ex);
    outcome = co_await job->evaluate_on(*s->pool);
  }
  if (outcome != WafJob::Outcome::done || job->failed) co_return overloaded(*s, ex, outcome);
  observe(ex, job->seconds);
  Flow f = decide(*s, ex, job->verdict, detect);
  if (f.is_next() && o.inspect_response_headers) {
    job->verdict = {};
    ex.emplace<WafPending>(WafPending{job});
  }
  co_return f;
}

asio::awaitable<Flow> inspect_response(std::shared_ptr<detail::WafState> s, Exchange& ex, std::shared_ptr<WafJob> job,
                                       bool detect) {
  job->response_phase = true;
  job->response_status = static_cast<int>(ex.response().status());
  for (const auto& f : ex.response().headers()) {
    WafRequest::Field field{job->response_header_bytes.size(), f.name.size(), 0, f.value.size()};
    job->response_header_bytes.append(f.name);
    field.value_at = job->response_header_bytes.size();
    job->response_header_bytes.append(f.value);
    job->response_headers.push_back(field);
  }
  job->deadline = clock::now() + s->options->time_limit;
  WafJob::Outcome outcome;
  {
    PendingGauge gauge(ex);
    outcome = co_await job->evaluate_on(*s->pool);
  }
  if (outcome != WafJob::Outcome::done || job->failed) co_return overloaded(*s, ex, outcome);
  observe(ex, job->seconds);
  WafVerdict& v = job->verdict;
  detail::WafState::count_matches(ex, v);
  if (v.intervene && !detect) {
    s->blocked.fetch_add(1, std::memory_order_relaxed);
    detail::WafState::count(ex, "blocked");
    detail::WafState::report(ex, v, true, 502, detect, "waf-blocked", "response refused by the WAF");
    co_return Flow::respond(Status::bad_gateway, "response refused by the web application firewall");
  }
  if (!v.matches.empty()) detail::WafState::report(ex, v, false, 0, detect, "waf-matched", {});
  co_return Flow::next();
}

}  // namespace
}  // namespace gatehouse
