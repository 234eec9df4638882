#include "server/connection.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <cstring>

#include "gatehouse/middleware/request_id.hpp"
#include "http1/serializer.hpp"
#include "proxy/forwarding.hpp"
#include "tls/tls_context.hpp"
#include "proxy/upstream_impl.hpp"

namespace gatehouse::detail {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Converts an absolute-form target ("http://host/path") to origin form and returns the authority.
bool to_origin_form(Request& req, std::string& authority) {
  std::string_view t = req.target();
  std::size_t skip = 0;
  if (t.size() >= 7 && iequals(t.substr(0, 7), "http://")) skip = 7;
  else if (t.size() >= 8 && iequals(t.substr(0, 8), "https://")) skip = 8;
  else return false;
  t.remove_prefix(skip);
  const auto slash = t.find_first_of("/?");
  authority.assign(t.substr(0, slash));
  std::string rest(slash == std::string_view::npos ? "/" : t.substr(slash));
  if (rest.front() == '?') rest.insert(rest.begin(), '/');
  req.set_target(rest);
  return true;
}

}  // namespace

Connection::Connection(Worker& worker, const ListenerRuntime& listener, tcp::socket socket)
    : worker_(worker),
      listener_(listener),
      stream_(listener.tls ? Stream(std::move(socket), *listener.tls) : Stream(std::move(socket))) {
  asio::error_code ec;
  peer_ = stream_.socket().remote_endpoint(ec);
  peer_text_ = address_text(peer_.address());
  stream_.socket().set_option(tcp::no_delay(true), ec);
  const auto& trusted = worker_.shared().trusted_proxies;
  peer_trusted_ = !trusted.empty() && trusted.contains(peer_.address());
  deadline_ = std::make_shared<Deadline>(worker_.executor(), [this] { on_deadline(); });
  worker_.attach(this);
}

Connection::~Connection() {
  deadline_->cancel();
  worker_.detach(this);
}

void Connection::on_deadline() noexcept {
  timed_out_ = true;
  stream_.cancel();
  if (active_upstream_) active_upstream_->stream.cancel();
}

void Connection::close_if_idle() noexcept {
  closing_ = true;
  if (phase_ == Phase::idle || phase_ == Phase::handshake) stream_.close();
}

void Connection::force_close() noexcept {
  closing_ = true;
  stream_.close();
  if (active_upstream_) active_upstream_->stream.close();
}

asio::awaitable<void> Connection::run() {
  auto self = shared_from_this();
  const Limits& limits = worker_.shared().options.limits;
  try {
    if (stream_.is_tls()) {
      phase_ = Phase::handshake;
      set_deadline_in(listener_.options.tls->handshake_timeout);
      auto [ec] = co_await stream_.tls().async_handshake(asio::ssl::stream_base::server, use_tuple);
      if (ec || timed_out_) {
        stream_.close();
        co_return;
      }
      if (const char* name = SSL_get_servername(stream_.tls().native_handle(), TLSEXT_NAMETYPE_host_name))
        sni_ = name;
    }
    bool first = true;
    while (!closing_) {
      if (beg_ == end_) {
        // Between requests: wait for bytes without holding a buffer. TLS may hold decrypted or
        // undecrypted bytes above the socket, so TLS connections read directly instead.
        phase_ = Phase::idle;
        buf_.release();
        beg_ = end_ = 0;
        set_deadline_in(first ? limits.header_timeout : limits.idle_timeout);
        if (!stream_.is_tls()) {
          auto [ec] = co_await stream_.socket().async_wait(tcp::socket::wait_read, use_tuple);
          if (ec || closing_ || timed_out_) break;
        }
      }
      first = false;
      if (co_await serve_one() == Outcome::close) break;
    }
  } catch (const std::exception&) {
    // Only allocation failure can get here; the connection is dropped, the gateway carries on.
  }
  deadline_->cancel();
  stream_.close();
}

asio::awaitable<bool> Connection::read_more() {
  if (!buf_) buf_ = PooledBuffer(worker_.buffers());
  beg_ = end_ = 0;
  auto [ec, n] = co_await stream_.read_some(asio::buffer(buf_.data(), BufferPool::kSize));
  if (ec || n == 0) co_return false;
  end_ = n;
  co_return true;
}

asio::awaitable<Connection::Outcome> Connection::serve_one() {
  const GatewayShared& shared = worker_.shared();
  const Limits& limits = shared.options.limits;
  Exchange ex;
  ex.set_peer(peer_, peer_trusted_);
  ex.set_secure(stream_.is_tls(), sni_);
  parser_.start_request(&ex.request(), shared.parse_limits);
  ex.request().headers().reserve(1024, 16);

  // Head: the header timeout runs from the first byte of this request. Until that byte a TLS
  // connection (which reads without waiting first) is still idle: idle deadline, drain closes it.
  bool any_byte = beg_ != end_;
  if (any_byte) {
    phase_ = Phase::head;
    set_deadline_in(limits.header_timeout);
  }
  ex.set_start_time(clock::now());
  for (;;) {
    if (beg_ == end_) {
      const bool was_idle = !any_byte;
      if (!co_await read_more()) {
        if (timed_out_ && any_byte) {
          timed_out_ = false;
          set_deadline_in(milliseconds(1000));
          co_return co_await refuse(ex, 408, {});
        }
        co_return Outcome::close;
      }
      any_byte = true;
      ex.add_bytes_received(end_ - beg_);
      if (was_idle) {
        if (closing_) co_return Outcome::close;
        phase_ = Phase::head;
        ex.set_start_time(clock::now());
        set_deadline_in(limits.header_timeout);
      }
    }
    auto r = parser_.feed(buf_.data() + beg_, end_ - beg_);
    beg_ += r.consumed;
    if (r.error) co_return co_await refuse(ex, parser_.error_status(), parser_.error_reason());
    if (r.head_complete) break;
  }

  Request& req = ex.request();
  // Request hygiene the parser leaves to us (RFC 9112 3.2 and 3.2.2).
  std::string authority;
  const bool absolute = to_origin_form(req, authority);
  unsigned reject = 0;
  std::string_view why;
  if (req.method() == "CONNECT") reject = 405, why = "CONNECT is not supported";
  else if (!absolute && (req.target().empty() || req.target().front() != '/')) reject = 400, why = "invalid request target";
  else if (req.headers().count("host") > 1) reject = 400, why = "duplicate Host header";
  else if (req.version_minor() == 1 && !req.headers().contains("host") && !absolute) reject = 400, why = "missing Host header";
  else if (absolute && authority.empty()) reject = 400, why = "absolute target without authority";
  if (reject) co_return co_await refuse(ex, reject, why);
  if (absolute) req.headers().set("host", authority);
  // Upgrades (WebSocket, h2c) are not supported: the request is forwarded without its Upgrade
  // fields, and the connection ends after the answer, since llhttp treats what follows an upgrade
  // as another protocol.
  if (parser_.upgrade()) closing_ = true;
  if (peer_trusted_)
    ex.set_client_address(client_address_from(req.headers(), peer_.address(), shared.trusted_proxies));
  // Before the middleware: fields the client names in Connection go now, so that a client cannot
  // make the gateway drop headers its middleware sets (identity headers, a minted token).
  strip_hop_by_hop(req.headers());

  bool method_mismatch = false;
  const Router& router = *listener_.router;
  const CompiledRoute* route = router.match(req.host(), req.path(), req.method(), method_mismatch);
  ChainView chain = route ? ChainView(route->chain) : router.global_chain();
  if (route) ex.set_route_name(route->route.name);

  std::size_t entered = 0;
  Flow flow = step_on_request(chain, ex, entered);
  while (flow.is_later()) {
    flow = co_await settle(std::move(flow));
    if (flow.is_next()) flow = step_on_request(chain, ex, entered);
  }
  if (ex.request_id().empty()) ex.set_request_id(RequestId::generate());
  if (flow.is_response()) {
    adopt_response(flow, ex);
    co_return co_await answer_locally(ex, chain, entered);
  }
  if (!route) {
    co_return co_await send_error(ex, chain, entered, method_mismatch ? 405 : 404, {}, false);
  }
  if (route->route.handler) {
    Flow answer = Flow::next();
    try {
      answer = route->route.handler(ex);
      while (answer.is_later()) answer = co_await settle(std::move(answer));
    } catch (...) {
      answer = Flow::respond(Status::internal_server_error);
    }
    if (!answer.is_response()) co_return co_await send_error(ex, chain, entered, 404, {}, false);
    adopt_response(answer, ex);
    co_return co_await answer_locally(ex, chain, entered);
  }
  co_return co_await forward(ex, *route, entered);
}

asio::awaitable<bool> Connection::write_response_head_and_body(Exchange& ex, bool close) {
  const Response& resp = ex.response();
  const bool head = ex.request().method() == "HEAD";
  const bool no_body = resp.status() == 204 || resp.status() == 304 || resp.status() < 200;
  scratch_.clear();
  Response& mutable_resp = ex.response();
  strip_hop_by_hop(mutable_resp.headers());
  write_response_head(scratch_, resp, ex.request().version_minor(), no_body ? Framing::none : Framing::length,
                      resp.body().size(), close);
  gather_.clear();
  gather_.push_back(asio::buffer(scratch_));
  if (!head && !no_body && !resp.body().empty()) gather_.push_back(asio::buffer(resp.body()));
  phase_ = Phase::response;
  set_deadline_in(worker_.shared().options.limits.send_timeout);
  auto [ec, n] = co_await stream_.write(gather_);
  ex.add_bytes_sent(n);
  co_return !ec;
}

asio::awaitable<Connection::Outcome> Connection::answer_locally(Exchange& ex, ChainView chain, std::size_t entered) {
  std::size_t pos = entered;
  Flow f = step_on_response(chain, ex, pos);
  while (f.is_later()) {
    f = co_await settle(std::move(f));
    if (f.is_response()) adopt_response(f, ex);
    f = step_on_response(chain, ex, pos);
  }
  // A request body we did not read makes the connection unusable for the next request.
  const bool close = closing_ || worker_.draining() || !parser_.keep_alive() || !parser_.head_done() ||
                     (parser_.in_message());
  const bool ok = co_await write_response_head_and_body(ex, close);
  run_on_complete(chain, entered, ex, ok ? std::error_code{} : std::make_error_code(std::errc::connection_aborted));
  co_return (ok && !close) ? Outcome::keep_alive : Outcome::close;
}

asio::awaitable<Connection::Outcome> Connection::send_error(Exchange& ex, ChainView chain, std::size_t entered,
                                                           unsigned status, std::string_view message, bool close) {
  set_error_response(ex, status, message);
  if (close) closing_ = true;
  co_return co_await answer_locally(ex, chain, entered);
}

asio::awaitable<Connection::Outcome> Connection::refuse(Exchange& ex, unsigned status, std::string_view why) {
  ex.set_request_id(RequestId::generate());
  const ChainView global = listener_.router->global_chain();
  co_return co_await send_error(ex, global, global.size(), status, why, true);
}

asio::awaitable<std::unique_ptr<UpstreamConnection>> Connection::connect_upstream(Exchange& ex, Upstream& up,
                                                                                 unsigned& fail_status) {
  const UpstreamOptions& o = up.options();
  auto endpoints = up.endpoints();
  if (endpoints->empty()) {
    fail_status = 503;
    co_return nullptr;
  }
  UpstreamPool& pool = worker_.pool_for(&up);
  const std::size_t attempts = std::min<std::size_t>(1 + o.connect_retries, endpoints->size());
  fail_status = 502;
  for (std::size_t i = 0; i < attempts; ++i) {
    const Upstream::Endpoint& ep = (*endpoints)[pool.next_index() % endpoints->size()];
    tcp::socket sock(worker_.executor());
    auto* tls = up.impl().tls_context.get();
    auto c = std::make_unique<UpstreamConnection>(tls ? Stream(std::move(sock), *tls) : Stream(std::move(sock)),
                                                  ep.label);
    active_upstream_ = c.get();
    timed_out_ = false;
    set_deadline_in(o.connect_timeout);
    auto [ec] = co_await c->stream.socket().async_connect(ep.address, use_tuple);
    if (!ec && tls) {
      prepare_client_stream(c->stream.tls().native_handle(),
                            o.tls->server_name.empty() ? std::string_view(ep.host) : std::string_view(o.tls->server_name));
      auto [hec] = co_await c->stream.tls().async_handshake(asio::ssl::stream_base::client, use_tuple);
      ec = hec;
    }
    active_upstream_ = nullptr;
    if (!ec && !timed_out_) {
      asio::error_code ignored;
      c->stream.socket().set_option(tcp::no_delay(true), ignored);
      ex.set_upstream_endpoint(ep.label);
      co_return c;
    }
    fail_status = timed_out_ ? 504 : 502;
    timed_out_ = false;
  }
  co_return nullptr;
}

void Connection::frame_chunk(std::size_t chunk_index, std::size_t total, bool last) {
  // gather_[chunk_index] was reserved for the chunk header; an empty chunk is left out, since a
  // zero-size chunk would end the body.
  if (total > 0) {
    chunk_head_.clear();
    write_chunk_header(chunk_head_, total);
    gather_[chunk_index] = asio::buffer(chunk_head_);
    gather_.push_back(asio::buffer("\r\n", 2));
  } else {
    gather_.erase(gather_.begin() + static_cast<std::ptrdiff_t>(chunk_index));
  }
  if (last) gather_.push_back(asio::buffer("0\r\n\r\n", 5));
}

asio::awaitable<asio::error_code> Connection::send_request_part(UpstreamConnection& uc, Exchange& ex,
                                                                ChainView chain, std::size_t entered,
                                                                Framing framing, bool with_head, bool last,
                                                                bool& hook_answered) {
  gather_.clear();
  if (with_head) gather_.push_back(asio::buffer(scratch_));
  const std::size_t chunk_index = gather_.size();
  if (framing == Framing::chunked) gather_.emplace_back();
  std::size_t total = 0;
  for (std::string_view piece : parser_.body()) {
    BodyChunk c{piece, false};
    Flow f = run_on_request_body(chain, entered, ex, c);
    if (f.is_response()) {
      adopt_response(f, ex);
      hook_answered = true;
      co_return asio::error::operation_aborted;
    }
    if (framing == Framing::length && c.data.size() != piece.size()) {
      // The upstream was promised Content-Length bytes: a resized chunk would desync it.
      set_error_response(ex, 500, "request body hook changed a length-delimited body");
      hook_answered = true;
      co_return asio::error::operation_aborted;
    }
    if (!c.data.empty()) gather_.push_back(asio::buffer(c.data.data(), c.data.size()));
    total += c.data.size();
  }
  parser_.clear_body();
  if (last) {
    BodyChunk c{{}, true};
    Flow f = run_on_request_body(chain, entered, ex, c);
    if (f.is_response()) {
      adopt_response(f, ex);
      hook_answered = true;
      co_return asio::error::operation_aborted;
    }
    // A hook may append to a chunked body in the final chunk; never to a length-delimited one.
    if (!c.data.empty() && framing == Framing::length) {
      set_error_response(ex, 500, "request body hook changed a length-delimited body");
      hook_answered = true;
      co_return asio::error::operation_aborted;
    }
    if (!c.data.empty()) gather_.push_back(asio::buffer(c.data.data(), c.data.size()));
    total += c.data.size();
  }
  if (framing == Framing::chunked) frame_chunk(chunk_index, total, last);
  if (gather_.empty()) co_return asio::error_code{};
  auto [ec, n] = co_await uc.stream.write(gather_);
  co_return ec;
}

asio::awaitable<bool> Connection::send_response_part(Exchange& ex, ChainView chain, std::size_t entered,
                                                     Http1Parser& from, Framing framing, bool with_head,
                                                     bool last) {
  gather_.clear();
  if (with_head) gather_.push_back(asio::buffer(scratch_));
  const std::size_t chunk_index = gather_.size();
  if (framing == Framing::chunked) gather_.emplace_back();
  std::size_t total = 0;
  for (std::string_view piece : from.body()) {
    BodyChunk c{piece, false};
    if (!run_on_response_body(chain, entered, ex, c)) co_return false;
    // The client was promised Content-Length bytes: a resized chunk ends the exchange.
    if (framing == Framing::length && c.data.size() != piece.size()) co_return false;
    if (!c.data.empty()) gather_.push_back(asio::buffer(c.data.data(), c.data.size()));
    total += c.data.size();
  }
  from.clear_body();
  if (last) {
    BodyChunk c{{}, true};
    if (!run_on_response_body(chain, entered, ex, c)) co_return false;
    if (framing == Framing::length && !c.data.empty()) co_return false;
    if (!c.data.empty()) gather_.push_back(asio::buffer(c.data.data(), c.data.size()));
    total += c.data.size();
  }
  if (framing == Framing::chunked) frame_chunk(chunk_index, total, last);
  if (gather_.empty()) co_return true;
  set_deadline_in(worker_.shared().options.limits.send_timeout);
  auto [ec, n] = co_await stream_.write(gather_);
  ex.add_bytes_sent(n);
  co_return !ec;
}

asio::awaitable<Connection::Outcome> Connection::forward(Exchange& ex, const CompiledRoute& route,
                                                         std::size_t entered) {
  const GatewayShared& shared = worker_.shared();
  const Limits& limits = shared.options.limits;
  Upstream& up = *route.route.upstream;
  const UpstreamOptions& uo = up.options();
  const ChainView chain(route.chain);
  Request& req = ex.request();

  // Re-frame: what the upstream gets is our own serialization of the request.
  const bool req_chunked = parser_.chunked();
  const long long req_length = parser_.content_length();
  const bool has_body = req_chunked || req_length > 0;
  const Framing req_framing = req_chunked ? Framing::chunked : (req_length > 0 ? Framing::length : Framing::none);
  const bool expect_continue = parser_.expect_continue() && req.version_minor() == 1;
  const bool head_request = req.method() == "HEAD";
  strip_hop_by_hop(req.headers());
  req.headers().remove("expect");  // the gateway answers 100-continue itself, after the checks
  set_forwarded_headers(ex, peer_text_);
  if (route.route.rewrite_prefix) {
    std::string path(*route.route.rewrite_prefix);
    path.append(req.path().substr(std::min(route.route.path.size(), req.path().size())));
    if (path.empty() || path.front() != '/') path.insert(path.begin(), '/');
    req.set_path(path);
  }

  const auto request_deadline = ex.start_time() + limits.request_timeout;
  const auto total_deadline = clock::now() + uo.total_timeout;
  const ParseLimits upstream_limits{0, 64 * 1024, 256, 0};
  UpstreamPool& pool = worker_.pool_for(&up);
  std::unique_ptr<UpstreamConnection> uc;
  PooledBuffer ubuf(worker_.buffers());
  std::size_t ubeg = 0, uend = 0;
  bool continue_sent = false;
  bool request_incomplete = false;  // the upstream answered before the request body was all sent
  Response& resp = ex.response();

  auto try_deadline = [&] {
    return std::min(clock::now() + uo.try_timeout, total_deadline);
  };
  // Ends the exchange with the gateway's own answer (nothing of the upstream's reached the client).
  auto fail = [&](unsigned status, std::string_view why) -> asio::awaitable<Outcome> {
    active_upstream_ = nullptr;
    uc.reset();
    if (parser_.in_message()) closing_ = true;  // request body left unread
    set_error_response(ex, status, why);
    co_return co_await answer_locally(ex, chain, entered);
  };

  for (int attempt = 0;; ++attempt) {
    phase_ = Phase::upstream;
    uc = attempt == 0 ? pool.take(uo) : nullptr;
    if (uc) {
      ex.set_upstream_endpoint(uc->label);
    } else {
      unsigned fail_status = 502;
      uc = co_await connect_upstream(ex, up, fail_status);
      if (!uc)
        co_return co_await fail(fail_status, fail_status == 504   ? "upstream connect timeout"
                                             : fail_status == 503 ? "no upstream endpoint available"
                                                                  : "upstream connection failed");
    }
    active_upstream_ = uc.get();
    timed_out_ = false;

    // The client may send the body now: routing and every request check have passed.
    if (expect_continue && !continue_sent && parser_.in_message()) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      set_deadline_in(limits.send_timeout);
      auto [ec, n] = co_await stream_.write(asio::buffer(kContinue));
      if (ec) {
        active_upstream_ = nullptr;
        run_on_complete(chain, entered, ex, std::make_error_code(std::errc::connection_aborted));
        co_return Outcome::close;
      }
      continue_sent = true;
    }

    // We speak HTTP/1.1 upstream, which requires Host: an HTTP/1.0 client may have sent none.
    if (!req.headers().contains("host")) req.headers().add("host", uc->label);
    // Request head with the body bytes that came with it, then the rest of the body.
    scratch_.clear();
    write_request_head(scratch_, req, req_framing, static_cast<std::uint64_t>(std::max(0LL, req_length)));
    deadline_->set(try_deadline());
    bool hook_answered = false;
    asio::error_code ec = co_await send_request_part(*uc, ex, chain, entered, req_framing, true,
                                                     !parser_.in_message(), hook_answered);
    if (hook_answered) {
      uc.reset();
      active_upstream_ = nullptr;
      closing_ = true;
      co_return co_await answer_locally(ex, chain, entered);
    }
    if (ec) {
      if (uc->reused && !has_body && attempt == 0 && !timed_out_) continue;  // stale keep-alive connection
      if (!has_body || timed_out_) co_return co_await fail(timed_out_ ? 504 : 502, "upstream write failed");
      request_incomplete = true;  // it may still have answered (a 413, say): read on
    }
    while (!request_incomplete && parser_.in_message()) {
      phase_ = Phase::body;
      deadline_->set(std::min(request_deadline, clock::now() + limits.idle_timeout));
      if (beg_ == end_) {
        if (!co_await read_more()) {
          const bool slow = timed_out_;
          timed_out_ = false;
          uc.reset();
          active_upstream_ = nullptr;
          if (slow) co_return co_await fail(408, "request body not received in time");
          run_on_complete(chain, entered, ex, std::make_error_code(std::errc::connection_aborted));
          co_return Outcome::close;
        }
        ex.add_bytes_received(end_ - beg_);
      }
      auto r = parser_.feed(buf_.data() + beg_, end_ - beg_);
      beg_ += r.consumed;
      if (r.error) co_return co_await fail(parser_.error_status(), parser_.error_reason());
      deadline_->set(try_deadline());
      ec = co_await send_request_part(*uc, ex, chain, entered, req_framing, false, r.message_complete, hook_answered);
      if (hook_answered) {
        uc.reset();
        active_upstream_ = nullptr;
        closing_ = true;
        co_return co_await answer_locally(ex, chain, entered);
      }
      if (ec) {
        if (timed_out_) co_return co_await fail(504, "upstream did not take the request in time");
        request_incomplete = true;
      }
    }

    // Response head. 1xx interim responses are consumed here (we answered 100-continue ourselves).
    phase_ = Phase::upstream;
    deadline_->set(try_deadline());
    resp = Response{};
    uc->parser.start_response(&resp, upstream_limits, head_request);
    bool got_bytes = false;
    bool retry = false;
    for (;;) {
      if (ubeg == uend) {
        ubeg = uend = 0;
        auto [rec, n] = co_await uc->stream.read_some(asio::buffer(ubuf.data(), BufferPool::kSize));
        if (rec || n == 0) {
          if (timed_out_) co_return co_await fail(504, "upstream response timeout");
          if (uc->reused && !got_bytes && !has_body && attempt == 0) {
            retry = true;
            break;
          }
          co_return co_await fail(502, "upstream closed the connection");
        }
        got_bytes = true;
        uend = n;
      }
      auto r = uc->parser.feed(ubuf.data() + ubeg, uend - ubeg);
      ubeg += r.consumed;
      if (r.error) co_return co_await fail(502, "invalid response from upstream");
      if (uc->parser.head_done() && resp.status() >= 100 && resp.status() < 200) {
        if (resp.status() == 101) co_return co_await fail(502, "upstream switched protocols");
        if (uc->parser.in_message()) continue;  // need the rest of the interim response
        resp = Response{};
        uc->parser.start_response(&resp, upstream_limits, head_request);
        continue;
      }
      if (uc->parser.head_done()) break;
    }
    if (retry) continue;
    break;
  }

  // The response: hooks back to front, then the head, then the body as it streams.
  const bool up_chunked = uc->parser.chunked();
  const long long up_length = uc->parser.content_length();
  const bool up_eof = uc->parser.needs_eof();
  strip_hop_by_hop(resp.headers());
  std::size_t pos = entered;
  bool replaced = false;
  Flow f = step_on_response(chain, ex, pos, replaced);
  while (f.is_later()) {
    f = co_await settle(std::move(f));
    if (f.is_response()) {
      adopt_response(f, ex);
      replaced = true;
    }
    f = step_on_response(chain, ex, pos, replaced);
  }
  if (replaced) {
    // A middleware answered instead: the upstream's body is not wanted, nor its connection.
    uc.reset();
    active_upstream_ = nullptr;
    closing_ = closing_ || parser_.in_message();
    const bool close = closing_ || worker_.draining() || !parser_.keep_alive();
    const bool ok = co_await write_response_head_and_body(ex, close);
    run_on_complete(chain, entered, ex, ok ? std::error_code{} : std::make_error_code(std::errc::connection_aborted));
    co_return (ok && !close) ? Outcome::keep_alive : Outcome::close;
  }

  const unsigned status = resp.status();
  const bool no_body = head_request || status == 204 || status == 304;
  Framing framing;
  std::uint64_t length = 0;
  if (no_body) {
    framing = (head_request && up_length >= 0) ? Framing::length : Framing::none;
    length = up_length >= 0 ? static_cast<std::uint64_t>(up_length) : 0;
  } else if (!up_chunked && up_length >= 0) {
    framing = Framing::length;
    length = static_cast<std::uint64_t>(up_length);
  } else {
    framing = req.version_minor() == 0 ? Framing::close : Framing::chunked;
  }
  const bool close = closing_ || worker_.draining() || !parser_.keep_alive() || parser_.in_message() ||
                     request_incomplete || framing == Framing::close;
  scratch_.clear();
  write_response_head(scratch_, resp, req.version_minor(), framing, length, close);
  const Framing body_framing = no_body ? Framing::none : framing;
  bool complete = !uc->parser.in_message();
  phase_ = Phase::response;
  bool ok = co_await send_response_part(ex, chain, entered, uc->parser, body_framing, true, complete);
  std::error_code result;
  while (ok && !complete) {
    deadline_->set(clock::now() + uo.try_timeout);
    if (ubeg == uend) {
      ubeg = uend = 0;
      auto [rec, n] = co_await uc->stream.read_some(asio::buffer(ubuf.data(), BufferPool::kSize));
      if (rec || n == 0) {
        // Only a clean end of stream ends a close-delimited body: a reset, or TLS without
        // close_notify (stream_truncated), may have cut it short.
        if (!timed_out_ && up_eof && rec == asio::error::eof) {
          auto r = uc->parser.finish();
          complete = r.message_complete;
          ok = complete && co_await send_response_part(ex, chain, entered, uc->parser, body_framing, false, true);
          if (!complete) result = std::make_error_code(std::errc::connection_aborted);
          break;
        }
        // Cut short: the client must not take a truncated body for a whole one, so we close without
        // the final chunk.
        result = std::make_error_code(timed_out_ ? std::errc::timed_out : std::errc::connection_aborted);
        ok = false;
        break;
      }
      uend = n;
    }
    auto r = uc->parser.feed(ubuf.data() + ubeg, uend - ubeg);
    ubeg += r.consumed;
    if (r.error) {
      result = std::make_error_code(std::errc::protocol_error);
      ok = false;
      break;
    }
    complete = r.message_complete;
    ok = co_await send_response_part(ex, chain, entered, uc->parser, body_framing, false, complete);
  }
  if (!ok && !result) result = std::make_error_code(std::errc::connection_aborted);

  // Reuse the upstream connection only after a clean, complete, length-delimited exchange.
  active_upstream_ = nullptr;
  const bool reusable = ok && complete && !request_incomplete && !up_eof && uc->parser.keep_alive() &&
                        ubeg == uend && !timed_out_;
  if (reusable) {
    uc->reused = true;
    pool.put(std::move(uc), uo);
  }
  uc.reset();
  run_on_complete(chain, entered, ex, result);
  co_return (ok && !close) ? Outcome::keep_alive : Outcome::close;
}

}  // namespace gatehouse::detail
