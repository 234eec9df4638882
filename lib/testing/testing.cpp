#include "gatehouse/testing.hpp"

#include <exception>
#include <optional>
#include <stdexcept>
#include <system_error>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include "core/exchange_access.hpp"
#include "core/pipeline.hpp"
#include "observe/trace_context.hpp"

namespace gatehouse::testing {
namespace {

// co_spawn wants a default-constructible result to report exceptions with, which Flow is not, so
// the work runs inside a void coroutine that parks its result.
template <class T>
asio::awaitable<void> park(asio::awaitable<T> work, std::optional<T>& out) {
  out.emplace(co_await std::move(work));
}

// Runs one awaitable to completion on a private io_context; exceptions reach the caller.
template <class T>
T block_on(asio::awaitable<T> work) {
  asio::io_context io;
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(io, park(std::move(work), out), [&error](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
  if (!out) throw std::logic_error("gatehouse::testing: a Flow::later never finished (it waits for I/O nothing drives)");
  return std::move(*out);
}

// A body held in memory: one piece, then the end.
class StringBody final : public detail::BodySource {
 public:
  StringBody(std::string_view data, std::int64_t length) : piece_(data), length_(length), any_(!data.empty()) {}
  std::span<std::string_view> pieces() noexcept override {
    return any_ ? std::span<std::string_view>(&piece_, 1) : std::span<std::string_view>();
  }
  bool complete() const noexcept override { return true; }
  std::int64_t length() const noexcept override { return length_; }
  void consume() noexcept override { any_ = false; }
  asio::awaitable<detail::BodyRead> read_more() override { co_return detail::BodyRead{}; }

 private:
  std::string_view piece_;
  std::int64_t length_;
  bool any_;
};

// Collects body bytes in a string.
class StringSink final : public detail::BodySink {
 public:
  asio::awaitable<bool> write(std::span<const std::string_view> pieces, std::string_view tail, bool) override {
    for (std::string_view p : pieces) data.append(p);
    data.append(tail);
    co_return true;
  }
  std::string data;
};

// The client side: the request body as given, and what the client would receive.
class RecordingClient final : public detail::Downstream {
 public:
  RecordingClient(std::string_view request_body, ChainResult& result, Exchange& ex)
      : request_(request_body, -1), result_(result), ex_(ex), has_body_(!request_body.empty()) {}
  detail::BodySource* request_body() noexcept override { return has_body_ ? &request_ : nullptr; }
  void start_response(Exchange& ex, std::int64_t) override {
    result_.status = ex.response().status();
    result_.headers = ex.response().headers();
    result_.body.clear();
  }
  detail::BodySink& response_sink() noexcept override { return sink_; }

 private:
  class Sink final : public detail::BodySink {
   public:
    explicit Sink(RecordingClient& c) : c_(c) {}
    asio::awaitable<bool> write(std::span<const std::string_view> pieces, std::string_view tail, bool) override {
      // Only body bytes are counted (the gateway counts head bytes too).
      for (std::string_view p : pieces) c_.append(p);
      c_.append(tail);
      co_return true;
    }

   private:
    RecordingClient& c_;
  };
  void append(std::string_view s) {
    result_.body.append(s);
    detail::ExchangeAccess::add_bytes_sent(ex_, s.size());
  }
  StringBody request_;
  ChainResult& result_;
  Exchange& ex_;
  Sink sink_{*this};
  bool has_body_;
};

}  // namespace

// The test origin: records what reached it, answers with the queued responses.
class FakeUpstreamOrigin final : public detail::OriginCall {
 public:
  FakeUpstreamOrigin(FakeUpstream& upstream, bool& reached) : upstream_(upstream), reached_(reached) {}
  asio::awaitable<detail::OriginResult> serve(detail::ServeContext& ctx) const override {
    using Kind = detail::OriginResult::Kind;
    StringSink forwarded;
    const detail::PumpResult sent = co_await ctx.body.send_to(forwarded);
    if (sent.stop == detail::PumpResult::Stop::answered) co_return detail::OriginResult{Kind::answered};
    if (!sent.ok()) co_return detail::OriginResult{Kind::aborted};
    reached_ = true;
    auto [response, body] = upstream_.serve(ctx.ex.request(), std::move(forwarded.data));
    ctx.ex.response() = std::move(response);
    StringBody streamed(body, -1);
    const detail::Delivery d = co_await ctx.responder.deliver(&streamed);
    co_return detail::OriginResult{Kind::delivered, 0, {}, d.error};
  }

 private:
  FakeUpstream& upstream_;
  bool& reached_;
};

Exchange exchange(std::string_view method, std::string_view target,
                  std::initializer_list<std::pair<std::string_view, std::string_view>> headers) {
  // This constructor already sets peer 127.0.0.1:40000 (not trusted) and request id "test-id";
  // Exchange is not movable, so it has to be returned as this prvalue.
  return Exchange(method, target, headers);
}

void set_peer(Exchange& ex, const asio::ip::tcp::endpoint& peer, bool trusted) {
  detail::ExchangeAccess::set_peer(ex, peer, trusted);
}
void set_client_address(Exchange& ex, const asio::ip::address& client) {
  detail::ExchangeAccess::set_client_address(ex, client);
}
void set_secure(Exchange& ex, bool secure, std::string_view sni) { detail::ExchangeAccess::set_secure(ex, secure, sni); }
void set_client_identity(Exchange& ex, const ClientIdentity* identity) {
  detail::ExchangeAccess::set_client_identity(ex, identity);
}
void set_route_name(Exchange& ex, std::string_view name) { detail::ExchangeAccess::set_route_name(ex, name); }
void set_upstream_endpoint(Exchange& ex, std::string_view endpoint) {
  detail::ExchangeAccess::set_upstream_endpoint(ex, endpoint);
}

void apply_trace_context(Exchange& ex, const TraceContextOptions& options) {
  const detail::TracePolicy policy(options, detail::CidrSet{});
  if (policy.enabled()) policy.apply(ex);
}

Flow run(Flow flow) {
  while (flow.is_later()) flow = block_on(flow.take_work());
  return flow;
}

void FakeUpstream::respond_with(Response r, std::string body) {
  // A service's body streams; a body given inside the Response is treated the same way.
  if (body.empty() && !r.body().empty()) {
    body = r.body();
    const std::string type(r.headers().get("content-type").value_or("text/plain"));
    r.set_body({}, type);
  }
  queued_.emplace_back(std::move(r), std::move(body));
}

std::pair<Response, std::string> FakeUpstream::serve(const Request& req, std::string body) {
  received_.push_back({std::string(req.method()), std::string(req.target()), req.headers(), std::move(body)});
  if (queued_.empty()) {
    Response r;
    r.set_status(Status::ok);
    r.headers().set("content-type", "text/plain");
    return {std::move(r), "ok"};
  }
  auto next = std::move(queued_.front());
  queued_.pop_front();
  return next;
}

ChainResult run_chain(const std::vector<std::shared_ptr<const Middleware>>& middleware, Exchange& ex,
                      FakeUpstream* upstream, std::string_view request_body) {
  std::vector<const Middleware*> raw;
  raw.reserve(middleware.size());
  for (const auto& m : middleware) raw.push_back(m.get());
  ChainResult result;
  FakeUpstream fallback;
  FakeUpstreamOrigin origin(upstream ? *upstream : fallback, result.reached_upstream);
  RecordingClient client(request_body, result, ex);
  detail::ExchangeAccess::add_bytes_received(ex, request_body.size());
  block_on(detail::run_exchange(detail::ExchangePlan{ex, raw, &origin, 404, client}));
  return result;
}

}  // namespace gatehouse::testing
