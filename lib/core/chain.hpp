// Runs middleware hooks for one request: synchronous steps, with the rare Flow::later settled by the
// calling coroutine, so a chain of plain hooks costs virtual calls and no coroutine frames.
#pragma once
#include <cstddef>
#include <span>
#include <string_view>
#include <system_error>

#include <asio/awaitable.hpp>

#include "gatehouse/exchange.hpp"
#include "gatehouse/flow.hpp"
#include "gatehouse/middleware.hpp"

namespace gatehouse::detail {

using ChainView = std::span<const Middleware* const>;

/// Runs on_request from chain[pos] on, advancing pos past every hook it calls. Stops at the first
/// hook that does not return next(): the returned Flow is then a response or a later().
/// An exception from a hook becomes a 500 response.
Flow step_on_request(ChainView chain, Exchange& ex, std::size_t& pos) noexcept;

/// Runs on_response from chain[pos-1] down to chain[0], decrementing pos. A hook that responds
/// replaces ex.response() and the remaining hooks see the new response. Stops at a later().
Flow step_on_response(ChainView chain, Exchange& ex, std::size_t& pos) noexcept;
/// As above; `replaced` is set when a hook replaced the response (the upstream body is then dropped).
Flow step_on_response(ChainView chain, Exchange& ex, std::size_t& pos, bool& replaced) noexcept;

/// Awaits a later() flow; exceptions become a 500 response. The result may itself be later().
asio::awaitable<Flow> settle(Flow flow);

/// Runs on_request_body front to back over the entered hooks; a response aborts.
Flow run_on_request_body(ChainView chain, std::size_t entered, Exchange& ex, BodyChunk& chunk) noexcept;
/// Runs on_response_body back to front over the entered hooks; exceptions are contained and
/// reported through the return value (false: a hook threw, the exchange must be aborted).
bool run_on_response_body(ChainView chain, std::size_t entered, Exchange& ex, BodyChunk& chunk) noexcept;
/// Runs on_complete for chain[0..entered) back to front.
void run_on_complete(ChainView chain, std::size_t entered, Exchange& ex, std::error_code ec) noexcept;

/// Makes a response from a Flow::respond result: Flow::respond(Status, message) gets the JSON
/// error body {"error":..,"status":..,"request_id":..}; other responses are taken as they are.
void adopt_response(Flow& flow, Exchange& ex);

/// The gateway's own error answer for `status` (JSON body with the request id).
void set_error_response(Exchange& ex, unsigned status, std::string_view message = {});

/// Appends `s` to `out` as JSON string contents (without quotes), escaping control bytes and
/// replacing invalid UTF-8.
void append_json_escaped(std::string& out, std::string_view s);

}  // namespace gatehouse::detail
