// The one pipeline every exchange goes through, whatever the protocol and whether a real client or
// testing::run_chain drives it:
//
//   request hooks (global, then route) -> origin -> response hooks -> body hooks -> on_complete
//
// Hooks run synchronously; only a Flow::later is awaited (settle), so a chain of plain hooks costs
// virtual calls and no coroutine frames. A session (HTTP/1 connection, later an HTTP/2 stream)
// reads, checks and routes a request, then hands it here with its Downstream.
#pragma once
#include <cstdint>
#include <string_view>
#include <system_error>

#include <asio/awaitable.hpp>

#include "core/body_stream.hpp"
#include "core/chain.hpp"
#include "core/origin_call.hpp"

namespace gatehouse::detail {

/// The client side of an exchange, as the session provides it.
class Downstream {
 public:
  virtual ~Downstream() = default;
  /// The request body as it arrives from the client; null when the request has none.
  virtual BodySource* request_body() noexcept = 0;
  /// Prepares the head of ex.response() for a body of `length` bytes (-1: not known, streamed).
  /// The head leaves with the first write to response_sink().
  virtual void start_response(Exchange& ex, std::int64_t length) = 0;
  virtual BodySink& response_sink() noexcept = 0;
};

/// One exchange to run.
struct ExchangePlan {
  Exchange& ex;
  ChainView chain;                     ///< global chain followed by the route's
  const OriginCall* origin = nullptr;  ///< null: no route matched
  unsigned missing_status = 404;       ///< the answer when there is no origin (404 or 405)
  Downstream& down;
  Worker* worker = nullptr;
  Watchdog* watchdog = nullptr;
  std::string_view peer_text{};
};

/// Runs the exchange to its end. Returns the outcome on_complete saw (empty: the whole answer
/// reached the client).
asio::awaitable<std::error_code> run_exchange(ExchangePlan plan);

/// Answers a request refused before routing (malformed, over a limit, too slow): `chain` (the
/// global chain) sees the answer in on_response and on_complete without having seen the request.
asio::awaitable<std::error_code> refuse_exchange(Exchange& ex, ChainView chain, Downstream& down,
                                                 unsigned status, std::string_view why);

}  // namespace gatehouse::detail
