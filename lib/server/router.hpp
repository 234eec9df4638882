// Route table: picks the most specific route for a host, path and method.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/chain.hpp"
#include "core/origin_call.hpp"
#include "gatehouse/route.hpp"

namespace gatehouse::detail {

/// A route with its full chain (global middleware, then the route's) resolved once at start.
struct CompiledRoute {
  Route route;
  std::vector<const Middleware*> chain;
  const OriginCall* origin = nullptr;  // owned by the gateway, shared by every router
  bool hidden = false;  // bound to other listeners: its requests get 404 here, never another route
  std::size_t index = 0;  // position in the gateway's route list (its metrics series)
};

class Router {
 public:
  /// `origins[i]` answers routes[i] (null in tests that only match). `hidden[i]` (when given)
  /// marks routes[i] as served on other listeners only.
  Router(std::vector<Route> routes, const std::vector<std::shared_ptr<const Middleware>>& global,
         const std::vector<bool>& hidden = {}, const std::vector<const OriginCall*>& origins = {});

  /// The best route for the request, or nullptr. `method_mismatch` is set when a route matched
  /// host and path but not the method (the caller answers 405 instead of 404).
  const CompiledRoute* match(std::string_view host, std::string_view path, std::string_view method,
                             bool& method_mismatch) const noexcept;
  /// The global chain alone (for requests no route matched).
  ChainView global_chain() const noexcept { return global_; }

 private:
  std::vector<CompiledRoute> routes_;  // sorted: most specific first
  std::vector<const Middleware*> global_;
};

/// The routers of a gateway's listeners: a route with Route::listeners is served only on listeners
/// of those names. Listeners that serve the same routes share one router, so the routing cost per
/// request does not depend on how routes are bound.
struct ListenerRouters {
  std::vector<std::unique_ptr<Router>> routers;  // one per distinct set of routes
  std::vector<const Router*> by_listener;        // in the order of `listener_names`
};
ListenerRouters build_listener_routers(const std::vector<Route>& routes, const std::vector<const OriginCall*>& origins,
                                       const std::vector<std::string>& listener_names,
                                       const std::vector<std::shared_ptr<const Middleware>>& global);

/// True when `host` matches the route host pattern ("" any, "*.example.com", exact; no case).
bool host_matches(std::string_view pattern, std::string_view host) noexcept;
/// True when `path` matches `route_path` as a prefix on a segment boundary, or exactly.
bool path_matches(std::string_view route_path, bool prefix, std::string_view path) noexcept;

}  // namespace gatehouse::detail
