#include "http1/session.hpp"

#include <openssl/ssl.h>

#include <algorithm>

#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/detached.hpp>

#include "core/pipeline.hpp"
#include "gatehouse/bans.hpp"
#include "http1/body_writer.hpp"
#include "http1/request_checks.hpp"
#include "http1/serializer.hpp"
#include "net/watchdog.hpp"
#include "observe/security_events_http.hpp"
#include "proxy/forwarding.hpp"
#include "tls/client_identity.hpp"

namespace gatehouse::detail {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class Http1Session final : public ClientSession,
                           public std::enable_shared_from_this<Http1Session>,
                           private Downstream,
                           private BodySource {
 public:
  Http1Session(Worker& worker, WorkerSnapshotPtr snapshot, std::size_t listener, tcp::socket socket,
               const tcp::endpoint& peer, ListenerSlot slot)
      : worker_(worker),
        slot_(std::move(slot)),
        snapshot_(std::move(snapshot)),
        listener_(&snapshot_->shared->listeners[listener]),
        tls_context_(listener_->tls),
        stream_(tls_context_ ? Stream(std::move(socket), *tls_context_) : Stream(std::move(socket))),
        watchdog_(worker.deadlines(), stream_),
        writer_(stream_),
        peer_(peer) {
    asio::error_code ec;
    peer_text_ = address_text(peer_.address());
    stream_.socket().set_option(tcp::no_delay(true), ec);
    const auto& trusted = shared().trusted_proxies;
    peer_trusted_ = !trusted.empty() && trusted.contains(peer_.address());
    worker_.attach(this);
    connection_metrics_ = listener_->metrics;
    if (WorkerMetrics* m = worker_.metrics(); m && connection_metrics_) m->connection_opened(*connection_metrics_);
  }
  ~Http1Session() override {
    watchdog_.stop();
    worker_.detach(this);
    if (WorkerMetrics* m = worker_.metrics(); m && connection_metrics_) m->connection_closed(*connection_metrics_);
  }

  asio::awaitable<void> run();

  void close_if_idle() noexcept override {
    // A connection that has not brought a request yet is left to bring it: its client has just
    // connected and is sending it (closing now would fail that request). It is answered with
    // Connection: close, and the header timeout and the drain deadline still bound the wait.
    if (!had_request_) {
      retiring_ = true;
      return;
    }
    closing_ = true;
    if (phase_ == Phase::idle || phase_ == Phase::handshake) stream_.close();
  }
  std::uint64_t listener_id() const noexcept override { return listener_->id; }
  void force_close() noexcept override {
    closing_ = true;
    stream_.close();
    if (Stream* up = watchdog_.upstream()) up->close();
  }
  void sweep_idle(unsigned tick) noexcept override {
    // Idle for a whole sweep interval: stop the read that holds the buffer (run() goes on with a
    // wait that holds none).
    if (hot_idle_ && tick - idle_tick_ >= 2) {
      asio::error_code ec;
      stream_.socket().cancel(ec);
    }
  }

 private:
  enum class Phase : unsigned char { handshake, idle, head, body, upstream, response };

  /// One request; true when the connection may carry another.
  asio::awaitable<bool> serve_one();
  const GatewayShared& shared() const noexcept { return *snapshot_->shared; }
  /// Moves the connection to the worker's current snapshot when a reload replaced ours (between
  /// requests only). A connection whose listener the reload removed stays, and closes after this
  /// request.
  void follow_reload() noexcept;
  /// Reads more bytes from the client into buf_ (which must be fully parsed).
  asio::awaitable<bool> fill_buffer();
  /// Right after a response, once the worker has Worker::kCoroutineWaits connections waiting
  /// inside their coroutine: waits for the next request by reading into buf_ as run() does, but
  /// without the coroutine (run() ends; resume() starts it again when bytes arrive). Respawning
  /// costs about 1,200 instructions per request; held by thousands of idle connections, the
  /// frames (about 2.4 KB each) would leave holes between the connections' long-lived
  /// allocations, which the heap cannot give back once they are freed. The worker's sweep cancels
  /// the read of a connection that stays idle, which then parks.
  void wait_hot();
  /// Waits for the client's next bytes without a coroutine frame or a buffer (an idle keep-alive
  /// connection costs little more than its socket), then resumes.
  void park() noexcept;
  /// Runs run() again for bytes that arrived while idle.
  void resume() noexcept;
  /// Answers a request refused before routing, and ends the connection.
  /// `report`: a security event for the refusal (not for a banned client: it was reported when banned).
  asio::awaitable<bool> refuse(Exchange& ex, unsigned status, std::string_view why, bool report = true);

  // Downstream: the pipeline's view of the client.
  BodySource* request_body() noexcept override {
    return parser_->chunked() || parser_->content_length() > 0 ? this : nullptr;
  }
  void start_response(Exchange& ex, std::int64_t length) override;
  BodySink& response_sink() noexcept override { return writer_; }

  // BodySource: the request body as it arrives.
  std::span<std::string_view> pieces() noexcept override { return parser_->body_pieces(); }
  bool complete() const noexcept override { return !parser_->in_message(); }
  std::int64_t length() const noexcept override { return parser_->chunked() ? -1 : parser_->content_length(); }
  void consume() noexcept override { parser_->clear_body(); }
  asio::awaitable<BodyRead> read_more() override;

  Worker& worker_;
  ListenerSlot slot_;                // counted in the listener's open connections until the end
  WorkerSnapshotPtr snapshot_;         // what the current (or next) request runs on
  const ListenerRuntime* listener_;    // in snapshot_
  // The series this connection was counted open in; a reload may relabel its listener.
  const ListenerMetrics* connection_metrics_ = nullptr;
  std::shared_ptr<asio::ssl::context> tls_context_;  // the stream's, whatever the snapshot
  Stream stream_;
  Watchdog watchdog_;
  Http1BodyWriter writer_;
  Http1Parser* parser_ = nullptr;  // during a request only: the worker's (idle connections hold none)
  PooledBuffer buf_;
  std::size_t beg_ = 0, end_ = 0;  // unparsed bytes in buf_
  tcp::endpoint peer_;
  std::string peer_text_;  // formatted once: X-Forwarded-For and Forwarded need it per request
  std::string sni_;
  std::unique_ptr<const ClientIdentity> client_identity_;  // from a verified client certificate
  Exchange* current_ = nullptr;  // the exchange in progress
  std::size_t early_bytes_ = 0;  // read while idle, before the exchange existed
  unsigned idle_tick_ = 0;       // the worker's tick when the connection went idle
  clock::time_point request_deadline_{};
  Phase phase_ = Phase::handshake;
  bool peer_trusted_ = false;
  bool closing_ = false;           // no further request on this connection
  bool close_after_ = false;       // the response in progress says Connection: close
  bool continue_pending_ = false;  // a 100 Continue is owed before the body is read
  bool hot_idle_ = false;          // idle, waiting in a read that holds buf_ (run()'s or wait_hot()'s)
  bool first_ = true;              // no request yet: the header timeout applies while idle
  bool woken_ = false;             // run() restarted by resume(): bytes are waiting
  bool had_request_ = false;       // a request head arrived on this connection
  bool retiring_ = false;          // the connection ends after its next (or current) response
};

asio::awaitable<void> Http1Session::run() {
  auto self = shared_from_this();
  try {
    if (phase_ == Phase::handshake && stream_.is_tls()) {
      watchdog_.set_in(listener_->options.tls->handshake_timeout);
      const asio::error_code ec = co_await stream_.handshake(TlsStream::Role::server);
      if (WorkerMetrics* m = worker_.metrics(); m && listener_->metrics)
        m->tls_handshake(*listener_->metrics, !ec && !watchdog_.timed_out());
      if (ec || watchdog_.timed_out()) {
        if (SSL_get_verify_result(stream_.tls().native_handle()) != X509_V_OK)
          count_client_certificate(worker_.metrics(), listener_->metrics, false);
        if (SecurityEvents* events = shared().options.security_events.get())
          report_tls_failure(*events, peer_, stream_.tls().native_handle(), ec, watchdog_.timed_out(),
                             !listener_->options.tls->client_ca_file.empty());
        stream_.close();
        co_return;
      }
      if (const char* name = SSL_get_servername(stream_.tls().native_handle(), TLSEXT_NAMETYPE_host_name))
        sni_ = name;
      // Read once: every request on this connection sees the same identity.
      if (!listener_->options.tls->client_ca_file.empty()) {
        client_identity_ = verified_client_identity(stream_.tls().native_handle());
        count_client_certificate(worker_.metrics(), listener_->metrics, client_identity_ != nullptr);
      }
    }
    while (!closing_) {
      if (beg_ == end_ && !woken_) {
        const Limits& limits = shared().options.limits;
        phase_ = Phase::idle;
        beg_ = end_ = 0;
        watchdog_.set_in(first_ ? limits.header_timeout : limits.idle_timeout);
        // TLS may hold received bytes above the socket: those are read, not waited for.
        if (!stream_.has_buffered_input()) {
          if (buf_) {
            // Just served a request: the next one usually follows soon, so wait by reading into
            // the buffer we hold (one syscall for the next request, no change to epoll). The
            // worker's sweep cancels this read when the connection stays idle.
            // The worker's other connections first: the next request needs a round trip, and
            // reading before it arrives costs a syscall that only says "not yet".
            if (worker_.others_busy()) co_await asio::post(worker_.executor(), use_tuple_void);
            if (closing_ || watchdog_.timed_out()) break;
            Worker::CoroutineWait in_coroutine(worker_);
            if (!in_coroutine) {
              // Many connections wait already: this one waits without its frames. TLS waits
              // for readiness (the bytes go through the TLS stream, not into buf_).
              if (stream_.is_tls()) park();
              else wait_hot();
              co_return;
            }
            hot_idle_ = true;
            idle_tick_ = worker_.tick();
            auto [ec, n] = co_await stream_.read_some(asio::buffer(buf_.data(), buf_.size()));
            hot_idle_ = false;
            if (!ec && n > 0) {
              end_ = n;
              early_bytes_ = n;
            } else if (ec != asio::error::operation_aborted || closing_ || watchdog_.timed_out()) {
              break;
            }
          }
          if (beg_ == end_) {
            park();
            co_return;
          }
        } else {
          buf_.release();
        }
      }
      woken_ = false;
      first_ = false;
      if (!co_await serve_one()) break;
    }
  } catch (const std::exception&) {
    // Only allocation failure can get here; the connection is dropped, the gateway carries on.
  }
  watchdog_.stop();
  stream_.close();
}

void Http1Session::wait_hot() {
  // Plain TCP only: TLS bytes must go through the TLS stream.
  hot_idle_ = true;
  idle_tick_ = worker_.tick();
  stream_.socket().async_read_some(
      asio::buffer(buf_.data(), buf_.size()),
      [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
        self->hot_idle_ = false;
        if (!ec && n > 0) {
          self->end_ = n;
          self->early_bytes_ = n;
          self->resume();
        } else if (ec == asio::error::operation_aborted && !self->closing_ && !self->watchdog_.timed_out()) {
          // The sweep's cancel: idle for a while.
          self->park();
        } else {
          self->watchdog_.stop();
          self->stream_.close();
        }
      });
}

void Http1Session::resume() noexcept {
  woken_ = true;
  try {
    asio::co_spawn(worker_.executor(), run(), asio::detached);
  } catch (const std::exception&) {
    watchdog_.stop();
    stream_.close();
  }
}

void Http1Session::park() noexcept {
  buf_.release();
  try {
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this()](const asio::error_code& ec) {
      if (ec || self->closing_ || self->watchdog_.timed_out()) {
        self->watchdog_.stop();
        self->stream_.close();
        return;
      }
      self->resume();
    });
  } catch (const std::exception&) {  // no memory for the wait: the connection goes
    watchdog_.stop();
    stream_.close();
  }
}

asio::awaitable<bool> Http1Session::fill_buffer() {
  if (!buf_) buf_ = PooledBuffer(worker_.buffers());
  beg_ = end_ = 0;
  auto [ec, n] = co_await stream_.read_some(asio::buffer(buf_.data(), buf_.size()));
  if (ec || n == 0) co_return false;
  end_ = n;
  if (current_) ExchangeAccess::add_bytes_received(*current_, n);
  co_return true;
}

asio::awaitable<bool> Http1Session::refuse(Exchange& ex, unsigned status, std::string_view why, bool report) {
  closing_ = true;
  listener_->trace.start_new(ex);  // a trace id for the log line and the event, when tracing is on
  const ChainView global = listener_->router->global_chain();
  co_await refuse_exchange(ex, global, *this, status, why);
  if (WorkerMetrics* m = worker_.metrics())
    m->exchange_done(ex, nullptr, phase_ == Phase::response ? ex.response().status() : kNoResponseStatus);
  if (report) note_refused_request(ex, status, why);  // a banned client was reported when banned
  co_return false;
}

void Http1Session::follow_reload() noexcept {
  const WorkerSnapshotPtr& current = worker_.snapshot();
  if (current == snapshot_) return;
  const ListenerRuntime* listener = current->shared->find_listener(listener_->id);
  if (!listener) {
    retiring_ = true;  // this request still runs on the old snapshot, then the connection ends
    return;
  }
  snapshot_ = current;
  listener_ = listener;
  // The trusted proxies may have changed too.
  const auto& trusted = shared().trusted_proxies;
  peer_trusted_ = !trusted.empty() && trusted.contains(peer_.address());
}

asio::awaitable<bool> Http1Session::serve_one() {
  follow_reload();
  const Limits* limits = &shared().options.limits;
  ExchangePool::Lease lease = worker_.exchanges().take();
  Exchange& ex = *lease;
  Recycler<Http1Parser>::Lease parser = worker_.request_parsers().take(Http1Parser::Kind::request);
  parser_ = &*parser;
  parser_->reset();  // it may come from another connection (a request parser carries nothing over)
  current_ = &ex;
  worker_.exchange_started();
  struct Forget {
    Exchange*& current;
    Http1Parser*& parser;
    Worker& worker;
    ~Forget() {
      current = nullptr;
      parser = nullptr;
      worker.exchange_ended();
    }
  } forget{current_, parser_, worker_};
  ExchangeAccess::set_peer(ex, peer_, peer_trusted_);
  ExchangeAccess::set_secure(ex, stream_.is_tls(), sni_);
  ExchangeAccess::set_client_identity(ex, client_identity_.get());
  ExchangeAccess::set_security_events(ex, shared().options.security_events.get());
  ExchangeAccess::add_bytes_received(ex, std::exchange(early_bytes_, 0));
  if (WorkerMetrics* m = worker_.metrics()) ExchangeAccess::set_metrics(ex, m, &m->shard);
  parser_->start_request(&ex.request(), shared().parse_limits);
  ex.request().headers().reserve(1024, 16);
  close_after_ = false;
  continue_pending_ = false;

  // Head: the header timeout runs from the first byte of this request. Until that byte a TLS
  // connection (which reads without waiting first) is still idle: idle deadline, drain closes it.
  bool any_byte = beg_ != end_;
  if (any_byte) {
    phase_ = Phase::head;
    watchdog_.set_in(limits->header_timeout);
  }
  ExchangeAccess::set_start_time(ex, clock::now());
  for (;;) {
    if (beg_ == end_) {
      const bool was_idle = !any_byte;
      if (!co_await fill_buffer()) {
        if (watchdog_.timed_out() && any_byte) {
          watchdog_.clear();
          watchdog_.set_in(milliseconds(1000));
          co_return co_await refuse(ex, 408, {});
        }
        co_return false;
      }
      any_byte = true;
      if (was_idle) {
        if (closing_) co_return false;
        phase_ = Phase::head;
        ExchangeAccess::set_start_time(ex, clock::now());
        watchdog_.set_in(limits->header_timeout);
      }
    }
    auto r = parser_->feed(buf_.data() + beg_, end_ - beg_);
    beg_ += r.consumed;
    if (r.error) co_return co_await refuse(ex, parser_->error_status(), parser_->error_reason());
    if (r.head_complete) break;
  }
  had_request_ = true;

  // A request that arrived after a reload runs on the new configuration (a TLS connection waits
  // for its next request inside this call).
  if (worker_.snapshot() != snapshot_) {
    follow_reload();
    ExchangeAccess::set_peer(ex, peer_, peer_trusted_);
  }
  const GatewayShared& shared = this->shared();
  limits = &shared.options.limits;
  Request& req = ex.request();
  // Request hygiene the parser leaves to us: target form, Host, and the one canonical path that
  // routing, every middleware and the upstream see.
  if (const HeadVerdict v = check_request_head(req, listener_->options.path_policy); v.status)
    co_return co_await refuse(ex, v.status, v.reason);
  // Upgrades (WebSocket, h2c) are not supported: the request is forwarded without its Upgrade
  // fields, and the connection ends after the answer, since llhttp treats what follows an upgrade
  // as another protocol.
  if (parser_->upgrade()) closing_ = true;
  if (peer_trusted_)
    ExchangeAccess::set_client_address(ex, client_address_from(req.headers(), peer_.address(), shared.trusted_proxies));
  // Banned since the connection was accepted, or behind a trusted proxy: refused per request.
  if (const BanList* bans = shared.options.bans.get(); bans && bans->any() && bans->banned(ex.client_address())) {
    bans->count_hit(false);
    co_return co_await refuse(ex, 403, "client banned", false);
  }
  // Before the middleware: fields the client names in Connection go now, so that a client cannot
  // make the gateway drop headers its middleware sets (identity headers, a minted token).
  strip_hop_by_hop(req.headers());
  // Before the middleware, so that every hook, log line and event has the trace id, and what the
  // upstream receives is decided by the listener's policy alone.
  if (listener_->trace.enabled()) listener_->trace.apply(ex);

  bool method_mismatch = false;
  const Router& router = *listener_->router;
  const CompiledRoute* route = router.match(req.host(), req.path(), req.method(), method_mismatch);
  if (route) ExchangeAccess::set_route_name(ex, route->route.name);
  request_deadline_ = ex.start_time() + limits->request_timeout;
  continue_pending_ = parser_->expect_continue() && req.version_minor() == 1 && parser_->in_message();
  phase_ = Phase::upstream;

  ExchangePlan plan{ex, router.global_chain(), nullptr, method_mismatch ? 405u : 404u, *this, &worker_, &watchdog_,
                    peer_text_};
  if (route) {
    plan.chain = route->chain;
    plan.origin = route->origin;
  }
  const std::error_code ec = co_await run_exchange(plan);
  if (WorkerMetrics* m = worker_.metrics()) {
    const auto& by_route = shared.route_metrics;
    const RouteMetrics* rm = route && route->index < by_route.size() ? by_route[route->index] : nullptr;
    // No response head left: the client went away first.
    m->exchange_done(ex, rm, phase_ == Phase::response ? ex.response().status() : kNoResponseStatus);
  }
  co_return !ec && writer_.finished() && !close_after_ && !closing_;
}

asio::awaitable<BodyRead> Http1Session::read_more() {
  const Limits& limits = shared().options.limits;
  if (continue_pending_) {
    // The client may send the body now: routing and every request check have passed, and the
    // origin wants it.
    continue_pending_ = false;
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    watchdog_.set_in(limits.send_timeout);
    auto [ec, n] = co_await stream_.write(asio::buffer(kContinue));
    if (ec) co_return BodyRead{BodyRead::Kind::closed};
  }
  phase_ = Phase::body;
  watchdog_.set(std::min(request_deadline_, deadline_now() + limits.idle_timeout));
  if (beg_ == end_) {
    // An upload larger than the buffer streams through a bigger one: fewer syscalls.
    if (buf_ && !buf_.large()) {
      if (parser_->chunked()) {
        buf_.grow(BufferPool::kMedium);
      } else {
        const auto left = static_cast<std::uint64_t>(parser_->content_length()) - parser_->body_bytes();
        if (left > buf_.size()) buf_.grow(BufferPool::size_for(left));
      }
    }
    if (!co_await fill_buffer()) {
      if (watchdog_.timed_out()) {
        watchdog_.clear();
        if (current_) note_refused_request(*current_, 408, "request body not received in time");
        co_return BodyRead{BodyRead::Kind::timed_out};
      }
      co_return BodyRead{BodyRead::Kind::closed};
    }
  }
  auto r = parser_->feed(buf_.data() + beg_, end_ - beg_);
  beg_ += r.consumed;
  if (r.error) {
    if (current_) note_refused_request(*current_, parser_->error_status(), parser_->error_reason());
    co_return BodyRead{BodyRead::Kind::malformed, parser_->error_status(), parser_->error_reason()};
  }
  co_return BodyRead{};
}

void Http1Session::start_response(Exchange& ex, std::int64_t length) {
  Response& resp = ex.response();
  const Request& req = ex.request();
  const unsigned status = resp.status();
  strip_hop_by_hop(resp.headers());
  const bool head_request = req.method() == "HEAD";
  const bool no_body = head_request || status == 204 || status == 304 || status < 200;
  Framing framing;
  if (no_body) framing = (head_request && length >= 0) ? Framing::length : Framing::none;
  else if (length >= 0) framing = Framing::length;
  else framing = req.version_minor() == 0 ? Framing::close : Framing::chunked;
  // A request body left unread (the answer came first) makes the connection unusable.
  close_after_ = closing_ || retiring_ || worker_.draining() || !parser_->head_done() || !parser_->keep_alive() ||
                 parser_->in_message() || framing == Framing::close;
  std::string& head = ExchangeAccess::wire_head(ex);
  head.clear();
  write_response_head(head, resp, req.version_minor(), framing, length >= 0 ? static_cast<std::uint64_t>(length) : 0,
                      close_after_);
  watchdog_.clear();
  phase_ = Phase::response;
  writer_.start(head, no_body ? Framing::none : framing, &watchdog_, shared().options.limits.send_timeout, &ex);
}

}  // namespace

void start_http1_session(Worker& worker, WorkerSnapshotPtr snapshot, std::size_t listener, tcp::socket socket,
                         const tcp::endpoint& peer, ListenerSlot slot) {
  // The session and its shared_ptr control block in one block of the worker's session slab
  // (the margin covers the control block: two counts, a vtable pointer, the allocator).
  SlabAllocator<Http1Session> alloc(worker.session_blocks(sizeof(Http1Session) + 32));
  auto session = std::allocate_shared<Http1Session>(alloc, worker, std::move(snapshot), listener, std::move(socket),
                                                    peer, std::move(slot));
  asio::co_spawn(worker.executor(), session->run(), asio::detached);
}

}  // namespace gatehouse::detail
