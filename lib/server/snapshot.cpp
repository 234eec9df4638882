#include "server/snapshot.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/handler_origin.hpp"
#include "gatehouse/middleware/request_id.hpp"
#include "net/endpoint_text.hpp"
#include "proxy/upstream_call.hpp"
#include "tls/tls_context.hpp"

namespace gatehouse::detail {

namespace {
// A listener's metrics label: its name, or where it listens.
std::string listener_label(const ListenerOptions& lo, const tcp::endpoint& bound) {
  if (!lo.name.empty()) return lo.name;
  return endpoint_text(bound);
}
}  // namespace

std::shared_ptr<GatewayShared> build_snapshot(const GatewayDefinition& definition,
                                              std::shared_ptr<GatewayMetrics> metrics) {
  const GatewayOptions& options = definition.options;
  const std::vector<ListenerOptions>& listeners = definition.listeners;
  const std::vector<Route>& routes = definition.routes;
  auto s = std::make_shared<GatewayShared>();
  s->options = options;
  const Limits& l = options.limits;
  s->parse_limits = {l.max_uri_bytes, l.max_header_bytes, l.max_header_count, l.max_body_bytes};
  for (const auto& cidr : options.trusted_proxies)
    if (!s->trusted_proxies.add(cidr)) throw std::invalid_argument("invalid trusted proxy CIDR \"" + cidr + "\"");
  for (const auto& m : definition.middleware)
    if (!m) throw std::invalid_argument("null middleware in the global chain");

  std::set<Upstream*> seen;
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const Route& r = routes[i];
    const std::string label = r.name.empty() ? "route " + std::to_string(i) : "route \"" + r.name + "\"";
    if (r.origin.empty()) throw std::invalid_argument(label + " has no origin (an upstream or a handler)");
    if (r.path.empty() || r.path.front() != '/') throw std::invalid_argument(label + ": path must start with '/'");
    for (const auto& name : r.listeners) {
      const bool known = std::any_of(listeners.begin(), listeners.end(),
                                     [&](const ListenerOptions& lo) { return !name.empty() && lo.name == name; });
      if (!known) throw std::invalid_argument(label + ": no listener is named \"" + name + "\"");
    }
    if (const auto& up = r.origin.upstream()) {
      if (seen.insert(up.get()).second) s->upstreams.push_back(up);
      s->origins.push_back(std::make_unique<UpstreamOrigin>(up, r.path, r.rewrite_prefix, r.retry_policy));
    } else {
      s->origins.push_back(std::make_unique<HandlerOrigin>(r.origin.handler()));
    }
  }
  std::vector<const OriginCall*> origins;
  for (const auto& o : s->origins) origins.push_back(o.get());
  // The request id comes first so that every later hook, log line and error body can use it.
  std::vector<std::shared_ptr<const Middleware>> chain;
  chain.push_back(std::make_shared<const RequestId>(options.request_id_header));
  chain.insert(chain.end(), definition.middleware.begin(), definition.middleware.end());
  // Each listener points at the router of the routes it serves (shared when the sets are equal).
  std::vector<std::string> names;
  for (const auto& lo : listeners) names.push_back(lo.name);
  ListenerRouters routers = build_listener_routers(routes, origins, names, chain);
  s->routers = std::move(routers.routers);

  for (std::size_t i = 0; i < listeners.size(); ++i) {
    const ListenerOptions& lo = listeners[i];
    ListenerRuntime lr;
    lr.options = lo;
    asio::error_code ec;
    const auto addr = asio::ip::make_address(lo.address, ec);
    if (ec) throw std::invalid_argument("invalid listener address \"" + lo.address + "\"");
    lr.bound = tcp::endpoint(addr, lo.port);
    if (lo.tls) lr.tls = make_server_context(*lo.tls);
    lr.router = routers.by_listener[i];
    lr.trace = TracePolicy(lo.trace_context ? *lo.trace_context : options.trace_context, s->trusted_proxies);
    s->listeners.push_back(std::move(lr));
  }
  s->global = std::move(chain);
  if (metrics) {
    // By CompiledRoute::index; a route keeps its series across reloads as long as its name stays.
    for (std::size_t i = 0; i < routes.size(); ++i)
      s->route_metrics.push_back(&metrics->route(routes[i].name.empty() ? "route" + std::to_string(i) : routes[i].name));
    for (const auto& up : s->upstreams) metrics->watch_breakers(up);
    for (const auto& [name, client] : options.redis) metrics->watch_redis(name, client);
    s->metrics = std::move(metrics);
  }
  return s;
}

void attach_listener_metrics(GatewayShared& s) {
  if (!s.metrics) return;
  for (auto& l : s.listeners) l.metrics = &s.metrics->listener(listener_label(l.options, l.bound));
}

}  // namespace gatehouse::detail
