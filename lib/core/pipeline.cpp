#include "core/pipeline.hpp"

#include <exception>

#include "core/exchange_access.hpp"
#include "core/request_body_buffer.hpp"
#include "gatehouse/middleware/request_id.hpp"

namespace gatehouse::detail {
namespace {

std::error_code aborted() { return std::make_error_code(std::errc::connection_aborted); }

// The request-body hooks front to back over the middleware whose on_request ran; an answer from
// one of them becomes the exchange's response.
class RequestHooks final : public BodyHooks {
 public:
  RequestHooks(ChainView chain, std::size_t entered, Exchange& ex) : chain_(chain), entered_(entered), ex_(ex) {}
  Verdict run(BodyChunk& chunk) noexcept override {
    if (entered_ == 0) return Verdict::pass;
    Flow f = run_on_request_body(chain_, entered_, ex_, chunk);
    if (f.is_next()) return Verdict::pass;
    try {
      adopt_response(f, ex_);
    } catch (...) {
      return Verdict::failed;
    }
    return Verdict::answered;
  }

 private:
  ChainView chain_;
  std::size_t entered_;
  Exchange& ex_;
};

// The response-body hooks back to front.
class ResponseHooks final : public BodyHooks {
 public:
  ResponseHooks(ChainView chain, std::size_t entered, Exchange& ex) : chain_(chain), entered_(entered), ex_(ex) {}
  Verdict run(BodyChunk& chunk) noexcept override {
    if (entered_ == 0) return Verdict::pass;
    return run_on_response_body(chain_, entered_, ex_, chunk) ? Verdict::pass : Verdict::failed;
  }

 private:
  ChainView chain_;
  std::size_t entered_;
  Exchange& ex_;
};

// The response phase: on_response back to front (a hook may replace the answer, or defer), then
// the head and the body to the client, the streamed body through the response-body hooks.
class PipelineResponder final : public Responder {
 public:
  PipelineResponder(ChainView chain, std::size_t entered, Exchange& ex, Downstream& down)
      : chain_(chain), entered_(entered), ex_(ex), down_(down) {}

  asio::awaitable<Delivery> deliver(BodySource* body) override {
    Delivery d;
    if (delivered_) {
      d.error = std::make_error_code(std::errc::operation_not_permitted);
      co_return d;
    }
    delivered_ = true;
    std::size_t pos = entered_;
    bool replaced = false;
    Flow f = step_on_response(chain_, ex_, pos, replaced);
    while (f.is_later()) {
      f = co_await settle(std::move(f));
      if (f.is_response()) {
        adopt_response(f, ex_);
        replaced = true;
      }
      f = step_on_response(chain_, ex_, pos, replaced);
    }
    if (replaced || body == nullptr) {
      // The gateway's own answer (or a hook's replacement): its body is held in the response.
      d.replaced = replaced && body != nullptr;
      const std::string& local = ex_.response().body();
      down_.start_response(ex_, static_cast<std::int64_t>(local.size()));
      BodySink& sink = down_.response_sink();
      const BodySink::Now now = sink.write_now({}, local, true);
      const bool ok = now == BodySink::Now::written || (now == BodySink::Now::later && co_await sink.write({}, local, true));
      d.complete = body == nullptr && ok;
      if (!ok) d.error = aborted();
      co_return d;
    }
    down_.start_response(ex_, body->length());
    ResponseHooks hooks(chain_, entered_, ex_);
    const PumpResult r = co_await pump_body(*body, down_.response_sink(), hooks);
    d.complete = r.ok();
    if (!r.ok()) {
      if (r.stop == PumpResult::Stop::source && r.read.kind == BodyRead::Kind::timed_out)
        d.error = std::make_error_code(std::errc::timed_out);
      else if (r.stop == PumpResult::Stop::source && r.read.kind == BodyRead::Kind::malformed)
        d.error = std::make_error_code(std::errc::protocol_error);
      else
        d.error = aborted();
    }
    co_return d;
  }

  bool delivered() const noexcept { return delivered_; }

 private:
  ChainView chain_;
  std::size_t entered_;
  Exchange& ex_;
  Downstream& down_;
  bool delivered_ = false;
};

// The gateway answers itself (ex.response() is set): response phase, then on_complete.
asio::awaitable<std::error_code> answer(ChainView chain, std::size_t entered, Exchange& ex, Downstream& down) {
  PipelineResponder responder(chain, entered, ex, down);
  const Delivery d = co_await responder.deliver(nullptr);
  run_on_complete(chain, entered, ex, d.error);
  co_return d.error;
}

}  // namespace

asio::awaitable<PumpResult> RequestBody::send_to(BodySink& sink) {
  if (!source_) {
    // No body: the hooks still see the (empty) last chunk, and the sink gets its head out.
    PumpResult r = end_without_body();
    if (r.ok()) {
      const BodySink::Now now = sink.write_now({}, {}, true);
      if (now == BodySink::Now::failed || (now == BodySink::Now::later && !co_await sink.write({}, {}, true)))
        r.stop = PumpResult::Stop::sink;
    }
    co_return r;
  }
  started_ = true;
  PumpResult r = co_await pump_body(*source_, sink, *hooks_);
  if (r.stop == PumpResult::Stop::failed) {
    // The upstream was promised Content-Length bytes: a resized body would desynchronize it.
    set_error_response(*ex_, 500, "request body hook changed a length-delimited body");
    r.stop = PumpResult::Stop::answered;
  }
  co_return r;
}

PumpResult RequestBody::end_without_body() {
  BodyChunk last{{}, true};
  const BodyHooks::Verdict v = hooks_->run(last);
  if (v == BodyHooks::Verdict::answered) return PumpResult{PumpResult::Stop::answered};
  if (v == BodyHooks::Verdict::failed || !last.data.empty()) {
    // A body added to a request framed without one would be read as the next request.
    set_error_response(*ex_, 500, "request body hook added a body to a request without one");
    return PumpResult{PumpResult::Stop::answered};
  }
  return PumpResult{};
}

asio::awaitable<std::error_code> run_exchange(ExchangePlan plan) {
  Exchange& ex = plan.ex;
  const ChainView chain = plan.chain;
  // Request hooks may read the body ahead (Exchange::read_request_body) until the origin starts.
  RequestBodyBuffer body_buffer(plan.down.request_body());
  struct Unlink {
    Exchange& ex;
    ~Unlink() { ExchangeAccess::set_body_buffer(ex, nullptr); }
  } unlink{ex};
  ExchangeAccess::set_body_buffer(ex, &body_buffer);
  std::size_t entered = 0;
  Flow flow = step_on_request(chain, ex, entered);
  while (flow.is_later()) {
    flow = co_await settle(std::move(flow));
    if (flow.is_next()) flow = step_on_request(chain, ex, entered);
  }
  if (ex.request_id().empty()) ex.set_request_id(RequestId::generate());
  if (flow.is_response()) {
    adopt_response(flow, ex);
    co_return co_await answer(chain, entered, ex, plan.down);
  }
  if (!plan.origin) {
    set_error_response(ex, plan.missing_status);
    co_return co_await answer(chain, entered, ex, plan.down);
  }

  ExchangeAccess::set_body_buffer(ex, nullptr);
  RequestHooks request_hooks(chain, entered, ex);
  RequestBody body(body_buffer.for_origin(), request_hooks, ex);
  PipelineResponder responder(chain, entered, ex, plan.down);
  ServeContext ctx{ex, body, responder, plan.worker, plan.watchdog, plan.peer_text};
  OriginResult result;
  try {
    result = co_await plan.origin->serve(ctx);
  } catch (...) {
    // An origin that throws (a local handler, say) fails this request only.
    result = responder.delivered() ? OriginResult{OriginResult::Kind::aborted}
                                   : OriginResult{OriginResult::Kind::failed, 500, {}};
  }
  switch (result.kind) {
    case OriginResult::Kind::delivered:
      run_on_complete(chain, entered, ex, result.error);
      co_return result.error;
    case OriginResult::Kind::failed:
      if (!responder.delivered()) {
        set_error_response(ex, result.status, result.reason);
        co_return co_await answer(chain, entered, ex, plan.down);
      }
      break;
    case OriginResult::Kind::answered:
      if (!responder.delivered()) co_return co_await answer(chain, entered, ex, plan.down);
      break;
    case OriginResult::Kind::aborted:
      break;
  }
  const std::error_code ec = result.error ? result.error : aborted();
  run_on_complete(chain, entered, ex, ec);
  co_return ec;
}

asio::awaitable<std::error_code> refuse_exchange(Exchange& ex, ChainView chain, Downstream& down,
                                                 unsigned status, std::string_view why) {
  ex.set_request_id(RequestId::generate());
  set_error_response(ex, status, why);
  co_return co_await answer(chain, chain.size(), ex, down);
}

}  // namespace gatehouse::detail
