#include "gatehouse/testing.hpp"

#include <exception>
#include <optional>
#include <stdexcept>
#include <system_error>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include "core/chain.hpp"
#include "gatehouse/middleware/request_id.hpp"

namespace gatehouse::testing {
namespace {

// co_spawn wants a default-constructible result to report exceptions with, which Flow is not, so
// the work runs inside a void coroutine that parks its result.
asio::awaitable<void> park(asio::awaitable<Flow> work, std::optional<Flow>& out) {
  out.emplace(co_await std::move(work));
}

// Runs one awaitable to completion on a private io_context; exceptions reach the caller.
Flow block_on(asio::awaitable<Flow> work) {
  asio::io_context io;
  std::optional<Flow> out;
  std::exception_ptr error;
  asio::co_spawn(io, park(std::move(work), out), [&error](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
  if (!out) throw std::logic_error("gatehouse::testing: a Flow::later never finished (it waits for I/O nothing drives)");
  return std::move(*out);
}

// What the client gets for a response made by the gateway: the body held in the response.
// Only body bytes are counted (the gateway counts header bytes too).
ChainResult local_result(Exchange& ex, bool reached_upstream) {
  ChainResult result{ex.response().status(), ex.response().headers(), ex.response().body(), reached_upstream};
  ex.add_bytes_sent(result.body.size());
  return result;
}

// The part of the gateway that answers without the upstream (a middleware or a body hook
// responded): on_response back to front, the body as set, on_complete.
ChainResult answer_locally(detail::ChainView chain, Exchange& ex, std::size_t entered) {
  std::size_t pos = entered;
  Flow f = detail::step_on_response(chain, ex, pos);
  while (f.is_later()) {
    f = block_on(detail::settle(std::move(f)));
    if (f.is_response()) detail::adopt_response(f, ex);
    f = detail::step_on_response(chain, ex, pos);
  }
  ChainResult result = local_result(ex, false);
  detail::run_on_complete(chain, entered, ex, {});
  return result;
}

// Passes one body piece through a hook chain and appends what comes out.
template <class Hooks>
bool pass_piece(std::string& out, std::string_view piece, bool last, Hooks&& hooks) {
  BodyChunk c{piece, last};
  if (!hooks(c)) return false;
  out.append(c.data);
  return true;
}

}  // namespace

Exchange exchange(std::string_view method, std::string_view target,
                  std::initializer_list<std::pair<std::string_view, std::string_view>> headers) {
  // This constructor already sets peer 127.0.0.1:40000 (not trusted) and request id "test-id";
  // Exchange is not movable, so it has to be returned as this prvalue.
  return Exchange(method, target, headers);
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
  const detail::ChainView chain(raw);

  // Request phase, settling Flow::later as the gateway's coroutine would.
  std::size_t entered = 0;
  Flow flow = detail::step_on_request(chain, ex, entered);
  while (flow.is_later()) {
    flow = block_on(detail::settle(std::move(flow)));
    if (flow.is_next()) flow = detail::step_on_request(chain, ex, entered);
  }
  if (ex.request_id().empty()) ex.set_request_id(RequestId::generate());
  if (flow.is_response()) {
    detail::adopt_response(flow, ex);
    return answer_locally(chain, ex, entered);
  }

  // Request body: the pieces that arrived (here: one), then the empty last chunk, as the gateway does.
  ex.add_bytes_received(request_body.size());
  std::string forwarded;
  Flow body_answer = Flow::next();
  auto request_hooks = [&](BodyChunk& c) {
    body_answer = detail::run_on_request_body(chain, entered, ex, c);
    return body_answer.is_next();
  };
  if ((!request_body.empty() && !pass_piece(forwarded, request_body, false, request_hooks)) ||
      !pass_piece(forwarded, {}, true, request_hooks)) {
    detail::adopt_response(body_answer, ex);
    return answer_locally(chain, ex, entered);
  }

  FakeUpstream fallback;
  auto [response, upstream_body] = (upstream ? *upstream : fallback).serve(ex.request(), std::move(forwarded));
  ex.response() = std::move(response);

  std::size_t pos = entered;
  bool replaced = false;
  Flow f = detail::step_on_response(chain, ex, pos, replaced);
  while (f.is_later()) {
    f = block_on(detail::settle(std::move(f)));
    if (f.is_response()) {
      detail::adopt_response(f, ex);
      replaced = true;
    }
    f = detail::step_on_response(chain, ex, pos, replaced);
  }
  if (replaced) {
    // A middleware answered instead: the upstream's body is dropped, as in the gateway.
    ChainResult result = local_result(ex, true);
    detail::run_on_complete(chain, entered, ex, {});
    return result;
  }

  // The upstream's body streams through on_response_body back to front.
  ChainResult result{ex.response().status(), ex.response().headers(), {}, true};
  auto response_hooks = [&](BodyChunk& c) { return detail::run_on_response_body(chain, entered, ex, c); };
  std::error_code ec;
  if ((!upstream_body.empty() && !pass_piece(result.body, upstream_body, false, response_hooks)) ||
      !pass_piece(result.body, {}, true, response_hooks)) {
    ec = std::make_error_code(std::errc::connection_aborted);  // the gateway cuts the connection here
  }
  ex.add_bytes_sent(result.body.size());
  detail::run_on_complete(chain, entered, ex, ec);
  return result;
}

}  // namespace gatehouse::testing
