// Origin: what answers a route's requests — an upstream (the request is proxied) or a local handler.
#pragma once
#include <concepts>
#include <functional>
#include <memory>
#include <utility>

#include "gatehouse/exchange.hpp"
#include "gatehouse/flow.hpp"
#include "gatehouse/upstream.hpp"

namespace gatehouse {

/// A local handler answers from the gateway itself (health checks, static answers, a JWKS). It
/// returns a Flow: Flow::respond(...) is the answer, Flow::later(...) defers it, and Flow::next()
/// means "nothing here": the client gets 404.
using Handler = std::function<Flow(Exchange&)>;

/// Holds exactly one of an upstream and a local handler, so a route can never have both.
/// Converts implicitly from either:
///   gw.route({.path = "/api", .origin = upstream});
///   gw.route({.path = "/healthz", .origin = [](gh::Exchange&) { return gh::Flow::respond(gh::Status::ok); }});
/// A default-constructed Origin is empty; Gateway::start() refuses a route without one.
class Origin {
 public:
  Origin() = default;
  Origin(std::shared_ptr<Upstream> upstream) : upstream_(std::move(upstream)) {}  // NOLINT: implicit on purpose
  template <class F>
    requires(!std::same_as<std::remove_cvref_t<F>, Origin> &&
             !std::convertible_to<F, std::shared_ptr<Upstream>> && std::is_invocable_r_v<Flow, F&, Exchange&>)
  Origin(F&& handler) : handler_(std::forward<F>(handler)) {}  // NOLINT: implicit on purpose

  /// The upstream requests are proxied to, or null for a local handler.
  const std::shared_ptr<Upstream>& upstream() const noexcept { return upstream_; }
  /// The local handler, or an empty function for an upstream.
  const Handler& handler() const noexcept { return handler_; }
  bool empty() const noexcept { return !upstream_ && !handler_; }
  explicit operator bool() const noexcept { return !empty(); }

 private:
  std::shared_ptr<Upstream> upstream_;
  Handler handler_;
};

}  // namespace gatehouse
