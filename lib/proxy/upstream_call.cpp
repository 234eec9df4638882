#include "proxy/upstream_call.hpp"

#include <algorithm>
#include <array>
#include <optional>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "core/exchange_access.hpp"
#include "http1/body_writer.hpp"
#include "http1/serializer.hpp"
#include "net/watchdog.hpp"
#include "proxy/body_replay.hpp"
#include "proxy/connection_wait.hpp"
#include "proxy/forwarding.hpp"
#include "proxy/overload_answer.hpp"
#include "proxy/upstream_impl.hpp"
#include "proxy/upstream_pool.hpp"
#include "server/worker.hpp"
#include "tls/tls_connect.hpp"
#include "util/fast_random.hpp"

namespace gatehouse::detail {
namespace {

using clock = std::chrono::steady_clock;

// Response heads from upstreams: generous, since the service is trusted more than clients.
constexpr ParseLimits kUpstreamLimits{0, 64 * 1024, 256, 0};

OriginResult fail(unsigned status, std::string_view why) {
  return OriginResult{OriginResult::Kind::failed, status, why, {}};
}

// Everything one call works with; lives in serve()'s frame.
struct Call {
  ServeContext& ctx;
  Worker& worker;
  Watchdog& wd;
  const Upstream& up;
  const UpstreamOptions& options;
  UpstreamPool& pool;
  CircuitBreaker& breaker;
  std::chrono::milliseconds try_timeout;  // the retry policy's per-try timeout, or the upstream's
  std::unique_ptr<UpstreamConnection> conn;
  PooledBuffer buf;
  std::size_t beg = 0, end = 0;
  clock::time_point total_deadline;
  Framing request_framing = Framing::none;
  std::uint64_t request_length = 0;
  bool head_request = false;
  bool request_incomplete = false;  // the upstream answered before it took the whole body
  bool last_read_filled = false;
  bool body_hooks_done = false;  // a request without a body: its hooks ran on the first attempt
  BodyReplay* replay = nullptr;  // set when the request's body is kept for retries
  WorkerMetrics* metrics = nullptr;
  const UpstreamMetrics* upstream_metrics = nullptr;  // null when metrics are off

  clock::time_point try_deadline() const { return std::min(deadline_now() + try_timeout, total_deadline); }
  /// The request could go out again: it has no body, or its body was not taken yet, or was kept.
  bool resendable() const noexcept { return !ctx.body.started() || (replay && replay->complete()); }
  OriginResult overloaded(BreakerLimit limit) {
    return refuse_overloaded(ctx.ex, up, breaker, limit, metrics, upstream_metrics);
  }
};

// How one attempt ended.
struct Attempt {
  enum class Kind : unsigned char { head, failed, final } kind = Kind::head;
  AttemptFailure failure = AttemptFailure::connect_failed;
  bool sent = false;      // request bytes reached the upstream
  bool got_bytes = false;  // response bytes arrived
  OriginResult result{};  // final
};

asio::awaitable<bool> connect(Call& c, const UpstreamEndpoint& ep, ConnectionSlot slot, clock::time_point deadline,
                              bool& timed_out) {
  const auto& impl = UpstreamAccess::impl(c.up);
  asio::ssl::context* tls = impl.tls_context.get();
  tcp::socket socket(c.worker.executor());
  c.conn = std::make_unique<UpstreamConnection>(tls ? Stream(std::move(socket), *tls) : Stream(std::move(socket)), ep);
  c.conn->slot = std::move(slot);
  // The same connect and handshake as the gateway's own HTTP client; its own deadline is the
  // connect timeout, the watchdog still holds the try and total deadlines.
  c.wd.watch_upstream(&c.conn->stream);
  c.wd.clear();
  c.wd.set(c.try_deadline());
  const std::string_view host =
      tls && !c.options.tls->server_name.empty() ? std::string_view(c.options.tls->server_name) : std::string_view(ep.host);
  const ConnectError err =
      co_await connect_stream(c.conn->stream, std::span<const tcp::endpoint>(&ep.address, 1), host, deadline);
  if (err.ok() && !c.wd.timed_out()) co_return true;
  timed_out = err.timed_out || c.wd.timed_out();
  c.wd.clear();
  c.wd.watch_upstream(nullptr);
  c.conn.reset();
  co_return false;
}

// One try on `ep`: connection, request, response head.
asio::awaitable<Attempt> try_endpoint(Call& c, const UpstreamEndpoint& ep, bool pooled_ok) {
  Attempt a;
  Exchange& ex = c.ctx.ex;
  c.request_incomplete = false;
  c.conn = pooled_ok ? c.pool.take(ep.address) : nullptr;
  if (!c.conn) {
    // A new connection: the request is pending until it has one (circuit breakers).
    const BreakerHold pending = acquire(c.breaker, BreakerLimit::max_pending_requests);
    if (!pending) {
      a.kind = Attempt::Kind::final;
      a.result = c.overloaded(BreakerLimit::max_pending_requests);
      co_return a;
    }
    const clock::time_point connect_deadline = std::min(deadline_now() + c.options.connect_timeout, c.try_deadline());
    ConnectionSlot slot;
    if (c.breaker.try_acquire(BreakerLimit::max_connections, false)) {
      slot = ConnectionSlot(c.breaker, c.pool.waiters());
    } else {
      // At max_connections: wait for a connection to come back or a slot to free up.
      ConnectionWait w =
          co_await wait_for_connection(c.pool, c.breaker, ep.address, pooled_ok, connect_deadline, c.worker.executor());
      if (w.timed_out()) {
        a.kind = Attempt::Kind::final;
        a.result = c.overloaded(BreakerLimit::max_connections);
        co_return a;
      }
      c.conn = std::move(w.pooled);
      slot = std::move(w.slot);
    }
    if (!c.conn) {
      bool timed_out = false;
      const bool connected = co_await connect(c, ep, std::move(slot), connect_deadline, timed_out);
      if (!connected) {
        a.kind = Attempt::Kind::failed;
        a.failure = timed_out ? AttemptFailure::connect_timeout : AttemptFailure::connect_failed;
        co_return a;
      }
    }
  }
  UpstreamConnection& uc = *c.conn;
  ExchangeAccess::set_upstream_endpoint(ex, uc.label);
  c.wd.watch_upstream(&uc.stream);
  c.wd.clear();

  // The request: our own serialization of the head, then the body through the request-body hooks.
  Request& req = ex.request();
  // We speak HTTP/1.1 upstream, which requires Host: an HTTP/1.0 client may have sent none.
  if (!req.headers().contains("host")) req.headers().add("host", uc.label);
  uc.head.clear();
  write_request_head(uc.head, req, c.request_framing, c.request_length);
  c.wd.set(c.try_deadline());
  Http1BodyWriter writer(uc.stream);
  writer.start(uc.head, c.request_framing, &c.wd, c.try_timeout);
  PumpResult sent;
  if (c.ctx.body.present()) {
    if (c.replay && c.replay->complete()) {
      // A retry: the body the hooks passed on the first attempt, again.
      if (!co_await c.replay->send(writer)) sent.stop = PumpResult::Stop::sink;
    } else if (c.replay) {
      BodyReplay::Recorder recorder(*c.replay, writer);
      sent = co_await c.ctx.body.send_to(recorder);
    } else {
      sent = co_await c.ctx.body.send_to(writer);
    }
  } else {
    // The hooks see the (empty) body once, however many attempts; no coroutine for the common case.
    if (!c.body_hooks_done) sent = c.ctx.body.end_without_body();
    c.body_hooks_done = true;
    if (sent.ok()) {
      const BodySink::Now now = writer.write_now({}, {}, true);
      if (now == BodySink::Now::failed || (now == BodySink::Now::later && !co_await writer.write({}, {}, true)))
        sent.stop = PumpResult::Stop::sink;
    }
  }
  a.sent = writer.bytes_written() > 0;
  switch (sent.stop) {
    case PumpResult::Stop::done:
      break;
    case PumpResult::Stop::answered:
    case PumpResult::Stop::failed:
      a.kind = Attempt::Kind::final;
      a.result = OriginResult{OriginResult::Kind::answered};
      co_return a;
    case PumpResult::Stop::source:
      // The client did not deliver its body.
      a.kind = Attempt::Kind::final;
      if (sent.read.kind == BodyRead::Kind::timed_out) a.result = fail(408, "request body not received in time");
      else if (sent.read.kind == BodyRead::Kind::malformed) a.result = fail(sent.read.status, sent.read.reason);
      else a.result = OriginResult{OriginResult::Kind::aborted};
      co_return a;
    case PumpResult::Stop::sink:
      if (c.wd.timed_out()) {
        a.kind = Attempt::Kind::final;
        a.result = fail(504, "upstream did not take the request in time");
        co_return a;
      }
      if (!c.ctx.body.present()) {
        a.kind = Attempt::Kind::failed;
        a.failure = AttemptFailure::send_failed;
        co_return a;
      }
      c.request_incomplete = true;  // it may still have answered (a 413, say): read on
      break;
  }

  // The response head. 1xx interim responses end here (the gateway answered 100-continue itself).
  c.wd.set(c.try_deadline());
  // Let the worker's other connections go first: the answer needs a round trip, and reading before
  // it arrives costs a syscall that only says "not yet".
  if (c.worker.others_busy()) co_await asio::post(c.worker.executor(), use_tuple_void);
  Response& resp = ex.response();
  resp.headers().clear();
  resp.clear_body();
  uc.parser.start_response(&resp, kUpstreamLimits, c.head_request);
  for (;;) {
    if (c.beg == c.end) {
      c.beg = c.end = 0;
      auto [ec, n] = co_await uc.stream.read_some(asio::buffer(c.buf.data(), c.buf.size()));
      if (ec || n == 0) {
        a.kind = Attempt::Kind::failed;
        a.failure = c.wd.timed_out() ? AttemptFailure::timeout : AttemptFailure::reset;
        co_return a;
      }
      a.got_bytes = true;
      c.end = n;
      c.last_read_filled = n == c.buf.size();
    }
    const auto r = uc.parser.feed(c.buf.data() + c.beg, c.end - c.beg);
    c.beg += r.consumed;
    if (r.error) {
      a.kind = Attempt::Kind::final;
      a.result = fail(502, "invalid response from upstream");
      co_return a;
    }
    if (!uc.parser.head_done()) continue;
    if (resp.status() >= 100 && resp.status() < 200) {
      if (resp.status() == 101) {
        a.kind = Attempt::Kind::final;
        a.result = fail(502, "upstream switched protocols");
        co_return a;
      }
      if (uc.parser.in_message()) continue;  // the rest of the interim response
      resp.headers().clear();
      uc.parser.start_response(&resp, kUpstreamLimits, c.head_request);
      continue;
    }
    co_return a;
  }
}

// The upstream's response body, as the pipeline streams it to the client.
class UpstreamBody final : public BodySource {
 public:
  explicit UpstreamBody(Call& c) noexcept : c_(c) {}
  std::span<std::string_view> pieces() noexcept override { return c_.conn->parser.body_pieces(); }
  bool complete() const noexcept override { return !c_.conn->parser.in_message(); }
  std::int64_t length() const noexcept override { return c_.conn->parser.content_length(); }
  void consume() noexcept override { c_.conn->parser.clear_body(); }

  asio::awaitable<BodyRead> read_more() override {
    Http1Parser& parser = c_.conn->parser;
    c_.wd.set_in(c_.options.try_timeout);
    if (c_.beg == c_.end) {
      // Safe to swap buffers now: every byte was parsed and its pieces consumed.
      if (!c_.buf.large()) grow_for_body(parser);
      c_.beg = c_.end = 0;
      auto [ec, n] = co_await c_.conn->stream.read_some(asio::buffer(c_.buf.data(), c_.buf.size()));
      if (ec || n == 0) {
        // Only a clean end of stream ends a close-delimited body: a reset, or TLS without
        // close_notify (stream_truncated), may have cut it short.
        if (!c_.wd.timed_out() && parser.needs_eof() && ec == asio::error::eof) {
          if (parser.finish().message_complete) co_return BodyRead{};
        }
        if (c_.wd.timed_out()) co_return BodyRead{BodyRead::Kind::timed_out};
        co_return BodyRead{BodyRead::Kind::closed};
      }
      c_.end = n;
      c_.last_read_filled = n == c_.buf.size();
    }
    const auto r = parser.feed(c_.buf.data() + c_.beg, c_.end - c_.beg);
    c_.beg += r.consumed;
    if (r.error) co_return BodyRead{BodyRead::Kind::malformed, 502, "invalid response body from upstream"};
    co_return BodyRead{};
  }

 private:
  // A body that will not fit the buffer moves to a bigger one: fewer, larger reads and writes.
  // Sized for what is left when the length is known, else one step at a time.
  void grow_for_body(const Http1Parser& parser) {
    const long long length = parser.content_length();
    if (length >= 0 && !parser.chunked()) {
      const std::uint64_t left = static_cast<std::uint64_t>(length) - parser.body_bytes();
      if (left > c_.buf.size()) c_.buf.grow(BufferPool::size_for(left));
    } else if (c_.last_read_filled) {
      c_.buf.grow(c_.buf.size() < BufferPool::kMedium ? BufferPool::kMedium : BufferPool::kLarge);
    }
  }
  Call& c_;
};

// How an attempt ended, in the gateway's metrics.
void count_attempt(WorkerMetrics& m, const UpstreamMetrics& u, const Attempt& a, clock::time_point start) noexcept {
  if (a.kind == Attempt::Kind::head) {
    m.upstream_answered(u, std::chrono::duration<double>(clock::now() - start).count());
  } else if (a.kind == Attempt::Kind::failed) {
    m.upstream_failed(u, a.failure);
  } else if (a.result.kind == OriginResult::Kind::failed && a.result.status == 504) {
    m.upstream_timed_out(u);  // the upstream did not take the request in time
  }
}

std::size_t untried(std::size_t endpoints, std::size_t tried) noexcept { return endpoints > tried ? endpoints - tried : 0; }

// After a failed attempt: whether to try again — the policy, then the circuit breaker (or the
// retry budget), then the time left for the backoff. Returns the backoff to wait, with the retry's
// unit in `hold`; nullopt: no retry.
std::optional<std::chrono::milliseconds> admit_retry(Call& c, const RetryPolicy& policy, const RetrySettings& settings,
                                                     const RetryRequest& rr, BreakerHold& hold) {
  // A body taken from the client and not kept cannot go out again, whatever the policy.
  if (rr.body_consumed || clock::now() >= c.total_deadline || !policy.should_retry(rr)) return std::nullopt;
  const auto delay = backoff_delay(settings.backoff, rr.attempt + 1, random_unit());
  if (clock::now() + delay >= c.total_deadline) return std::nullopt;
  switch (c.breaker.try_acquire_retry(settings.budget)) {
    case CircuitBreaker::RetryVerdict::admitted:
      break;
    case CircuitBreaker::RetryVerdict::max_retries:
      note_trip(c.up, c.breaker, BreakerLimit::max_retries, c.metrics, c.upstream_metrics);
      return std::nullopt;
    case CircuitBreaker::RetryVerdict::budget_exhausted:
      if (c.upstream_metrics) c.metrics->retry_budget_exhausted(*c.upstream_metrics);
      return std::nullopt;
  }
  hold = BreakerHold(c.breaker, BreakerLimit::max_retries);
  if (c.upstream_metrics) c.metrics->upstream_retry(*c.upstream_metrics, rr.failure, rr.status);
  return delay;
}

// A retry's backoff. Its own coroutine, so that the timer is not in serve()'s frame: Asio
// recycles coroutine frames only up to 1020 bytes, and a larger one costs an allocation per
// request and evicts the recycled frames of the others.
asio::awaitable<void> pause_for(Worker& worker, std::chrono::milliseconds delay) {
  asio::steady_timer pause(worker.executor());
  pause.expires_after(delay);
  co_await pause.async_wait(use_tuple);
}

// A response that is retried never reaches the client. Its connection goes back to the pool when
// the whole response is already in hand (the usual short error), else it is closed.
void discard_response(Call& c) {
  Http1Parser& parser = c.conn->parser;
  bool ok = true;
  if (c.beg < c.end) {
    const auto r = parser.feed(c.buf.data() + c.beg, c.end - c.beg);
    c.beg += r.consumed;
    ok = !r.error;
  }
  parser.clear_body();
  const bool reusable = ok && !parser.in_message() && !parser.needs_eof() && parser.keep_alive() && c.beg == c.end &&
                        !c.request_incomplete && !c.wd.timed_out();
  if (reusable) c.pool.put(std::move(c.conn));
  c.conn.reset();
  c.beg = c.end = 0;
}
// What an attempt says about its endpoint, for outlier detection.
Outcome outcome_of(const Attempt& a, const Exchange& ex) noexcept {
  switch (a.kind) {
    case Attempt::Kind::head: return outcome_of_status(ex.response().status());
    case Attempt::Kind::failed: return Outcome::gateway_failure;
    case Attempt::Kind::final:
      // A malformed answer or a request the upstream would not take in time is its fault; a
      // client that went away or sent a bad body is not.
      return a.result.kind == OriginResult::Kind::failed && a.result.status >= 502 ? Outcome::gateway_failure
                                                                                   : Outcome::neither;
  }
  return Outcome::neither;
}

}  // namespace

UpstreamOrigin::UpstreamOrigin(std::shared_ptr<Upstream> upstream, std::string route_path,
                               std::optional<std::string> rewrite_prefix,
                               std::shared_ptr<const RetryPolicy> retry_policy)
    : upstream_(std::move(upstream)),
      route_path_(std::move(route_path)),
      rewrite_prefix_(std::move(rewrite_prefix)),
      retry_(retry_policy ? std::move(retry_policy) : UpstreamAccess::impl(*upstream_).retry_policy),
      retry_settings_(retry_->settings()) {}

asio::awaitable<OriginResult> UpstreamOrigin::serve(ServeContext& ctx) const {
  if (!ctx.worker || !ctx.watchdog) co_return fail(500, "upstream call without a gateway worker");
  Exchange& ex = ctx.ex;
  Request& req = ex.request();
  CircuitBreaker& breaker = *UpstreamAccess::impl(*upstream_).breaker;
  const std::chrono::milliseconds try_timeout =
      retry_settings_.per_try_timeout.count() > 0 ? retry_settings_.per_try_timeout : upstream_->options().try_timeout;
  Call c{ctx, *ctx.worker, *ctx.watchdog, *upstream_, upstream_->options(), ctx.worker->pool_for(*upstream_),
         breaker, try_timeout, nullptr, PooledBuffer(ctx.worker->buffers()), 0, 0,
         deadline_now() + upstream_->options().total_timeout};
  c.metrics = ctx.worker->metrics();
  c.upstream_metrics = c.metrics ? c.pool.metrics() : nullptr;

  // Circuit breaker: a request in flight until this call returns.
  const BreakerHold in_flight = acquire(breaker, BreakerLimit::max_requests);
  if (!in_flight) co_return c.overloaded(BreakerLimit::max_requests);

  // Re-frame: what the upstream gets is our own serialization of the request.
  const std::int64_t length = ctx.body.length();
  c.request_framing = request_framing(req.method(), ctx.body.present(), length);
  c.request_length = length > 0 ? static_cast<std::uint64_t>(length) : 0;
  c.head_request = req.method() == "HEAD";
  strip_hop_by_hop(req.headers());
  req.headers().remove("expect");  // the gateway answers 100-continue itself, after the checks
  set_forwarded_headers(ex, ctx.peer_text);
  if (rewrite_prefix_) {
    std::string path(*rewrite_prefix_);
    path.append(req.path().substr(std::min(route_path_.size(), req.path().size())));
    if (path.empty() || path.front() != '/') path.insert(path.begin(), '/');
    req.set_path(path);
  }

  const RetryPolicy& retry = *retry_;
  // A body small enough is kept as it goes out, so that a retry can send it again.
  std::optional<BodyReplay> replay;
  const std::size_t replay_limit = retry_settings_.replay_body_bytes;
  if (replay_limit > 0 && ctx.body.present() && (length < 0 || static_cast<std::uint64_t>(length) <= replay_limit) &&
      retry.repeatable(ex)) {
    c.replay = &replay.emplace(replay_limit);
  }
  EndpointChooser& chooser = c.pool.chooser();
  std::array<std::size_t, 16> tried{};  // indexes in the upstream's full endpoint list
  std::size_t tried_count = 0;
  bool pooled_ok = true;
  BreakerHold retry_hold;  // a retry's unit of max_retries (or of the budget), until its attempt ends
  std::chrono::milliseconds backoff{0};
  for (unsigned attempt = 0;; ++attempt) {
    if (backoff.count() > 0) {
      // Jittered backoff on the worker's timer; no upstream stream to watch meanwhile.
      c.wd.disarm();
      co_await pause_for(c.worker, backoff);
      backoff = std::chrono::milliseconds(0);
    }
    const Choice choice = chooser.pick(ex, attempt, std::span<const std::size_t>(tried.data(), tried_count));
    if (!choice) co_return fail(503, "no upstream endpoint available");
    const UpstreamEndpoint& ep = choice.endpoint();
    chooser.started(choice);
    clock::time_point attempt_start{};
    if (c.upstream_metrics) attempt_start = clock::now();
    Attempt a = co_await try_endpoint(c, ep, pooled_ok);
    retry_hold.reset();
    if (c.upstream_metrics) count_attempt(*c.metrics, *c.upstream_metrics, a, attempt_start);
    const bool stale = a.kind == Attempt::Kind::failed && c.conn && c.conn->reused && !a.got_bytes &&
                       c.resendable() && !c.wd.timed_out() &&
                       (a.failure == AttemptFailure::send_failed || a.failure == AttemptFailure::reset);
    chooser.ended(choice, a.kind == Attempt::Kind::head, stale ? Outcome::neither : outcome_of(a, ex));
    const std::size_t candidates = choice.view->endpoints.size();
    if (a.kind == Attempt::Kind::head) {
      // A status the policy retries is a failed attempt, unless it is not retried after all:
      // then it is the answer.
      const unsigned status = ex.response().status();
      if (!retry.retries_status(status)) break;
      if (tried_count < tried.size()) tried[tried_count++] = choice.full_index();
      const RetryRequest rr{ex, attempt, AttemptFailure::status, true, !c.resendable(),
                            untried(candidates, tried_count), status};
      const auto delay = admit_retry(c, retry, retry_settings_, rr, retry_hold);
      if (!delay) break;
      ctx.watchdog->watch_upstream(nullptr);
      discard_response(c);
      backoff = *delay;
      continue;
    }
    ctx.watchdog->watch_upstream(nullptr);
    c.conn.reset();
    c.beg = c.end = 0;
    if (a.kind == Attempt::Kind::final) co_return a.result;
    if (stale && pooled_ok) {
      // A pooled keep-alive connection the upstream had closed: the request never reached it.
      // Once, on a fresh connection, whatever the policy.
      pooled_ok = false;
      continue;
    }
    if (tried_count < tried.size()) tried[tried_count++] = choice.full_index();
    const RetryRequest rr{ex, attempt, a.failure, a.sent, !c.resendable(), untried(candidates, tried_count)};
    if (const auto delay = admit_retry(c, retry, retry_settings_, rr, retry_hold)) {
      backoff = *delay;
      continue;
    }
    switch (a.failure) {
      case AttemptFailure::connect_failed: co_return fail(502, "upstream connection failed");
      case AttemptFailure::connect_timeout: co_return fail(504, "upstream connect timeout");
      case AttemptFailure::send_failed: co_return fail(502, "upstream write failed");
      case AttemptFailure::reset: co_return fail(502, "upstream closed the connection");
      case AttemptFailure::timeout: co_return fail(504, "upstream response timeout");
      case AttemptFailure::status: break;
    }
    co_return fail(502, "upstream failed");
  }

  // The response: the pipeline runs the response hooks and streams the body to the client.
  strip_hop_by_hop(ex.response().headers());
  UpstreamBody body(c);
  const Delivery d = co_await ctx.responder.deliver(&body);

  // Reuse the upstream connection only after a clean, complete, length-delimited exchange.
  ctx.watchdog->watch_upstream(nullptr);
  const bool reusable = !d.replaced && d.complete && !c.request_incomplete && !c.conn->parser.needs_eof() &&
                        c.conn->parser.keep_alive() && c.beg == c.end && !c.wd.timed_out();
  if (reusable) c.pool.put(std::move(c.conn));
  co_return OriginResult{OriginResult::Kind::delivered, 0, {}, d.error};
}

}  // namespace gatehouse::detail
