#include "server/router.hpp"

#include <algorithm>

namespace gatehouse::detail {
namespace {

int host_rank(std::string_view pattern) noexcept {
  if (pattern.empty()) return 0;
  return pattern.starts_with("*.") ? 1 : 2;
}

}  // namespace

bool host_matches(std::string_view pattern, std::string_view host) noexcept {
  if (pattern.empty()) return true;
  if (pattern.starts_with("*.")) {
    const std::string_view suffix = pattern.substr(1);  // ".example.com"
    return host.size() > suffix.size() &&
           iequals(host.substr(host.size() - suffix.size()), suffix);
  }
  return iequals(pattern, host);
}

bool path_matches(std::string_view route_path, bool prefix, std::string_view path) noexcept {
  if (!prefix) return path == route_path;
  if (!path.starts_with(route_path)) return false;
  if (path.size() == route_path.size() || route_path.ends_with('/')) return true;
  return path[route_path.size()] == '/';
}

Router::Router(std::vector<Route> routes, const std::vector<std::shared_ptr<const Middleware>>& global,
               const std::vector<bool>& hidden, const std::vector<const OriginCall*>& origins) {
  for (const auto& m : global) global_.push_back(m.get());
  routes_.reserve(routes.size());
  for (std::size_t i = 0; i < routes.size(); ++i) {
    CompiledRoute c{std::move(routes[i]), global_, i < origins.size() ? origins[i] : nullptr,
                    i < hidden.size() && hidden[i], i};
    for (const auto& m : c.route.middleware) c.chain.push_back(m.get());
    routes_.push_back(std::move(c));
  }
  // Most specific first: host rank, then exact before prefix, then longer paths, then routes that
  // restrict methods; stable so equal routes keep their declaration order.
  std::stable_sort(routes_.begin(), routes_.end(), [](const CompiledRoute& a, const CompiledRoute& b) {
    const int ha = host_rank(a.route.host), hb = host_rank(b.route.host);
    if (ha != hb) return ha > hb;
    if (a.route.prefix != b.route.prefix) return !a.route.prefix;
    if (a.route.path.size() != b.route.path.size()) return a.route.path.size() > b.route.path.size();
    return !a.route.methods.empty() && b.route.methods.empty();
  });
}

const CompiledRoute* Router::match(std::string_view host, std::string_view path, std::string_view method,
                                   bool& method_mismatch) const noexcept {
  method_mismatch = false;
  for (const auto& c : routes_) {
    const Route& r = c.route;
    if (!host_matches(r.host, host) || !path_matches(r.path, r.prefix, path)) continue;
    if (!r.methods.empty() &&
        std::none_of(r.methods.begin(), r.methods.end(), [&](const std::string& m) { return m == method; })) {
      if (!c.hidden) method_mismatch = true;
      continue;
    }
    // A route bound to other listeners shadows its paths here: failing closed, an admin path never
    // falls through to a broader public route such as "/".
    if (c.hidden) {
      method_mismatch = false;
      return nullptr;
    }
    return &c;
  }
  return nullptr;
}

ListenerRouters build_listener_routers(const std::vector<Route>& routes, const std::vector<const OriginCall*>& origins,
                                       const std::vector<std::string>& listener_names,
                                       const std::vector<std::shared_ptr<const Middleware>>& global) {
  ListenerRouters out;
  std::vector<std::vector<bool>> sets;  // which routes each router serves, parallel to out.routers
  for (const std::string& name : listener_names) {
    std::vector<bool> served(routes.size());
    for (std::size_t i = 0; i < routes.size(); ++i) {
      const auto& names = routes[i].listeners;
      served[i] = names.empty() || (!name.empty() && std::find(names.begin(), names.end(), name) != names.end());
    }
    const auto known = std::find(sets.begin(), sets.end(), served);
    if (known != sets.end()) {
      out.by_listener.push_back(out.routers[static_cast<std::size_t>(known - sets.begin())].get());
      continue;
    }
    std::vector<bool> hidden(routes.size());
    for (std::size_t i = 0; i < routes.size(); ++i) hidden[i] = !served[i];
    out.routers.push_back(std::make_unique<Router>(routes, global, hidden, origins));
    out.by_listener.push_back(out.routers.back().get());
    sets.push_back(std::move(served));
  }
  return out;
}

}  // namespace gatehouse::detail
