// Middleware: phase hooks run for every request on a chain (global, then the route's).
#pragma once
#include <system_error>

#include "gatehouse/body.hpp"
#include "gatehouse/exchange.hpp"
#include "gatehouse/flow.hpp"

namespace gatehouse {

/// One middleware instance serves all requests on all worker threads at once, so hooks are const:
/// keep configuration immutable and per-request state in Exchange slots (ex.emplace<T>()).
/// Override only the hooks you need; each default passes the request on untouched.
///
/// Order: on_request and on_request_body run front to back (global chain, then route chain);
/// on_response and on_response_body run back to front (route chain, then global chain), like layers
/// of an onion. on_complete runs for every middleware whose on_request ran, exactly once.
///
/// A request refused before routing (malformed, over a limit, too slow) never reaches on_request,
/// but the global chain still sees its answer: on_response and on_complete run for every global
/// middleware, so access logs and response headers cover every request. Such hooks find no
/// per-request state of their own (ex.find<T>() returns null) and an empty ex.route_name().
///
/// An exception escaping a hook becomes a 500 for that request only (on_complete still runs).
class Middleware {
 public:
  virtual ~Middleware() = default;

  /// When: request headers are parsed and a route was chosen (ex.route_name()).
  /// May: read or edit the request, answer with Flow::respond, or defer with Flow::later.
  /// Default: Flow::next().
  virtual Flow on_request(Exchange& ex) const;

  /// When: each piece of the request body as it streams to the upstream.
  /// May: inspect or replace the chunk; Flow::respond aborts the request (if the upstream has not
  /// answered yet the client gets that response). Default: Flow::next().
  virtual Flow on_request_body(Exchange& ex, BodyChunk& chunk) const;

  /// When: response headers arrived from the upstream (or a local handler answered), before
  /// anything is sent to the client. May: edit ex.response(), or replace it with Flow::respond.
  /// Also runs for responses that an earlier middleware produced. Default: Flow::next().
  virtual Flow on_response(Exchange& ex) const;

  /// When: each piece of the response body on its way to the client. May: inspect or replace it.
  virtual void on_response_body(Exchange& ex, BodyChunk& chunk) const;

  /// When: the exchange is over: the last byte was sent, or it failed (`ec` says why).
  /// Always called exactly once per request for each middleware whose on_request was called.
  virtual void on_complete(Exchange& ex, std::error_code ec) const noexcept;
};

}  // namespace gatehouse
