// The seam between the pipeline and what answers a request (an upstream call, a local handler, the
// test FakeUpstream): the origin reads the request body through the pipeline's request-body hooks
// and hands its answer to the pipeline's response phase.
#pragma once
#include <cstdint>
#include <string_view>
#include <system_error>

#include <asio/awaitable.hpp>

#include "core/body_stream.hpp"
#include "gatehouse/exchange.hpp"

namespace gatehouse::detail {

class Worker;
class Watchdog;

/// The client's request body, as an origin reads it: through the request-body hooks.
class RequestBody {
 public:
  RequestBody(BodySource* source, BodyHooks& hooks, Exchange& ex) noexcept
      : source_(source), hooks_(&hooks), ex_(&ex) {}
  /// False for a request without a body (sending it is then a no-op, or just the empty last chunk).
  bool present() const noexcept { return source_ != nullptr; }
  /// Content-Length of the request body, or -1 when chunked.
  std::int64_t length() const noexcept { return source_ ? source_->length() : 0; }
  /// True once some of the body was taken from the client: the request cannot be sent again.
  bool started() const noexcept { return started_; }
  /// Streams the whole body into `sink` (which sends its pending head first). When a hook answers
  /// or breaks the body (Stop::answered), the exchange's response is the answer to send.
  asio::awaitable<PumpResult> send_to(BodySink& sink);
  /// For a request without a body (!present()): runs the hooks on the empty last chunk, without a
  /// coroutine. Stop::done: go on (the caller still sends the head); Stop::answered: a hook answered.
  PumpResult end_without_body();

 private:
  BodySource* source_;
  BodyHooks* hooks_;
  Exchange* ex_;
  bool started_ = false;
};

/// How the response phase went, for the origin's bookkeeping (may it reuse its connection?).
struct Delivery {
  bool replaced = false;  ///< a response hook replaced the answer: the origin's body was not read
  bool complete = false;  ///< the origin's whole body was read and reached the client
  std::error_code error{};
};

/// The response phase, implemented by the pipeline.
class Responder {
 public:
  virtual ~Responder() = default;
  /// ex.response() holds the answer's head. `body` streams the body; null means the body is
  /// ex.response().body(). Runs the response hooks, then sends the answer to the client.
  virtual asio::awaitable<Delivery> deliver(BodySource* body) = 0;
};

/// What an origin reports when it returns.
struct OriginResult {
  enum class Kind : unsigned char {
    delivered,  ///< deliver() was called; `error` is its outcome
    failed,     ///< no answer: the gateway answers `status` with `reason`
    answered,   ///< a request-body hook answered: the answer is in the exchange
    aborted,    ///< the client went away (or a hook broke the body): nothing more can be sent
  };
  Kind kind = Kind::delivered;
  unsigned status = 0;
  std::string_view reason{};  ///< static text
  std::error_code error{};
};

/// Everything one call of an origin works with.
struct ServeContext {
  Exchange& ex;
  RequestBody& body;
  Responder& responder;
  Worker* worker = nullptr;      ///< null under testing::run_chain
  Watchdog* watchdog = nullptr;  ///< null under testing::run_chain
  std::string_view peer_text{};  ///< the peer address as text (formatted once per connection)
};

/// A route's origin as the pipeline calls it. Shared by all workers: serve() is const.
class OriginCall {
 public:
  virtual ~OriginCall() = default;
  virtual asio::awaitable<OriginResult> serve(ServeContext& ctx) const = 0;
};

}  // namespace gatehouse::detail
