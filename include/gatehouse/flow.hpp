// What a middleware hook decided: go on, answer now, or finish the decision asynchronously.
#pragma once
#include <memory>
#include <string_view>

#include <asio/awaitable.hpp>

#include "gatehouse/response.hpp"
#include "gatehouse/status.hpp"

namespace gatehouse {

class Flow {
 public:
  /// Continue with the next middleware (or the upstream).
  static Flow next() noexcept { return Flow{}; }
  /// Stop the chain and send this response to the client.
  static Flow respond(Response r);
  /// Stop the chain with a small JSON error body that carries the request id:
  /// {"error":"<reason>","status":N,"request_id":"..."}. `message` replaces the reason phrase.
  static Flow respond(Status s, std::string_view message = {});
  /// The slow path: the decision needs I/O (an introspection call, Redis). Only this path pays for a
  /// coroutine frame; a cache hit should return next() or respond() directly.
  static Flow later(asio::awaitable<Flow> work);

  bool is_next() const noexcept { return kind_ == Kind::next; }
  bool is_response() const noexcept { return kind_ == Kind::respond; }
  bool is_later() const noexcept { return kind_ == Kind::later; }

  Response& response() noexcept { return *response_; }
  const Response& response() const noexcept { return *response_; }
  /// For respond(Status, message): the message to put in the JSON body (empty: reason phrase).
  bool wants_error_body() const noexcept { return error_body_; }
  /// Moves the pending work out of a later() flow.
  asio::awaitable<Flow> take_work();

  Flow(Flow&&) noexcept;
  Flow& operator=(Flow&&) noexcept;
  ~Flow();

 private:
  enum class Kind : unsigned char { next, respond, later };
  Flow() noexcept = default;
  Kind kind_ = Kind::next;
  bool error_body_ = false;
  std::unique_ptr<Response> response_;
  std::unique_ptr<asio::awaitable<Flow>> work_;
};

}  // namespace gatehouse
