#include "gatehouse/gateway.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "gatehouse/middleware/request_id.hpp"
#include "core/handler_origin.hpp"
#include "proxy/upstream_call.hpp"
#include "server/worker.hpp"
#include "tls/tls_context.hpp"

namespace gatehouse {

using detail::tcp;

struct Gateway::Impl {
  GatewayOptions options;
  std::vector<ListenerOptions> listeners;
  std::vector<std::shared_ptr<const Middleware>> global;
  std::vector<Route> routes;
  std::optional<asio::any_io_executor> host_executor;
  std::shared_ptr<MetricsRegistry> registry;         // null: metrics off
  std::shared_ptr<detail::GatewayMetrics> metrics;  // the gateway's families in `registry`

  std::shared_ptr<detail::GatewayShared> shared;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<std::unique_ptr<detail::Worker>> workers;
  std::vector<std::thread> threads;
  std::vector<tcp::endpoint> bound;
  std::mutex mu;
  bool started = false;
  bool stopping = false;

  void build_shared();
  void init_metrics();
};

void Gateway::Impl::init_metrics() {
  if (!options.metrics.enabled) return;
  registry = options.metrics.registry ? options.metrics.registry : std::make_shared<MetricsRegistry>();
  metrics = std::make_shared<detail::GatewayMetrics>(registry);
}

namespace {
// A listener's label: its name, or where it listens.
std::string listener_label(const ListenerOptions& lo, const tcp::endpoint& bound) {
  if (!lo.name.empty()) return lo.name;
  const auto a = bound.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(bound.port());
}
}  // namespace

void Gateway::Impl::build_shared() {
  auto s = std::make_shared<detail::GatewayShared>();
  s->options = options;
  const Limits& l = options.limits;
  s->parse_limits = {l.max_uri_bytes, l.max_header_bytes, l.max_header_count, l.max_body_bytes};
  for (const auto& cidr : options.trusted_proxies)
    if (!s->trusted_proxies.add(cidr)) throw std::invalid_argument("invalid trusted proxy CIDR \"" + cidr + "\"");

  std::set<Upstream*> seen;
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const Route& r = routes[i];
    const std::string label = r.name.empty() ? "route " + std::to_string(i) : "route \"" + r.name + "\"";
    if (r.origin.empty()) throw std::invalid_argument(label + " has no origin (an upstream or a handler)");
    if (r.path.empty() || r.path.front() != '/') throw std::invalid_argument(label + ": path must start with '/'");
    for (const auto& name : r.listeners) {
      const bool known = std::any_of(listeners.begin(), listeners.end(),
                                     [&](const ListenerOptions& l) { return !name.empty() && l.name == name; });
      if (!known) throw std::invalid_argument(label + ": no listener is named \"" + name + "\"");
    }
    if (const auto& up = r.origin.upstream()) {
      if (seen.insert(up.get()).second) s->upstreams.push_back(up);
      s->origins.push_back(std::make_unique<detail::UpstreamOrigin>(up, r.path, r.rewrite_prefix));
    } else {
      s->origins.push_back(std::make_unique<detail::HandlerOrigin>(r.origin.handler()));
    }
  }
  std::vector<const detail::OriginCall*> origins;
  for (const auto& o : s->origins) origins.push_back(o.get());
  // The request id comes first so that every later hook, log line and error body can use it.
  std::vector<std::shared_ptr<const Middleware>> chain;
  chain.push_back(std::make_shared<const RequestId>(options.request_id_header));
  chain.insert(chain.end(), global.begin(), global.end());
  // Each listener points at the router of the routes it serves (shared when the sets are equal).
  std::vector<std::string> names;
  for (const auto& lo : listeners) names.push_back(lo.name);
  detail::ListenerRouters routers = detail::build_listener_routers(routes, origins, names, chain);
  s->routers = std::move(routers.routers);

  for (std::size_t i = 0; i < listeners.size(); ++i) {
    const ListenerOptions& lo = listeners[i];
    detail::ListenerRuntime lr;
    lr.options = lo;
    asio::error_code ec;
    const auto addr = asio::ip::make_address(lo.address, ec);
    if (ec) throw std::invalid_argument("invalid listener address \"" + lo.address + "\"");
    lr.bound = tcp::endpoint(addr, lo.port);
    if (lo.tls) lr.tls = detail::make_server_context(*lo.tls);
    lr.router = routers.by_listener[i];
    s->listeners.push_back(std::move(lr));
  }
  s->global = std::move(chain);
  if (metrics) {
    s->metrics = metrics;
    for (std::size_t i = 0; i < routes.size(); ++i)
      s->route_metrics.push_back(&metrics->route(routes[i].name.empty() ? "route" + std::to_string(i) : routes[i].name));
  }
  shared = std::move(s);
}

Gateway::Gateway(GatewayOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->init_metrics();
}

Gateway::Gateway(asio::any_io_executor executor, GatewayOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->host_executor = std::move(executor);
  impl_->init_metrics();
}

Gateway::~Gateway() {
  stop();
  wait();
}

Gateway& Gateway::listen(ListenerOptions listener) {
  impl_->listeners.push_back(std::move(listener));
  return *this;
}

Gateway& Gateway::use(std::shared_ptr<const Middleware> middleware) {
  if (!middleware) throw std::invalid_argument("Gateway::use: null middleware");
  impl_->global.push_back(std::move(middleware));
  return *this;
}

Gateway& Gateway::route(Route route) {
  impl_->routes.push_back(std::move(route));
  return *this;
}

const GatewayOptions& Gateway::options() const noexcept { return impl_->options; }

const std::shared_ptr<MetricsRegistry>& Gateway::metrics() const noexcept { return impl_->registry; }

void Gateway::start() {
  Impl& g = *impl_;
  std::lock_guard lock(g.mu);
  if (g.started) throw std::logic_error("Gateway::start called twice");
  if (g.listeners.empty()) throw std::invalid_argument("gateway has no listener");
  g.build_shared();

  if (g.host_executor) {
    g.workers.push_back(std::make_unique<detail::Worker>(g.shared, *g.host_executor));
  } else {
    unsigned n = g.options.workers ? g.options.workers : std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) {
      // Sockets and timers of a worker are used by that worker's thread alone, so the reactor
      // needs no locks; the scheduler keeps its own (stop() posts from other threads).
      g.contexts.push_back(std::make_unique<asio::io_context>(ASIO_CONCURRENCY_HINT_UNSAFE_IO));
      g.workers.push_back(std::make_unique<detail::Worker>(g.shared, g.contexts.back()->get_executor()));
    }
  }
  // Worker 0 binds first (port 0 becomes a real port); the others join that exact address.
  for (std::size_t i = 0; i < g.shared->listeners.size(); ++i) {
    const tcp::endpoint wanted = g.shared->listeners[i].bound;
    try {
      g.workers[0]->add_acceptor(i, wanted);
      const tcp::endpoint actual = g.workers[0]->acceptor_endpoint(i);
      for (std::size_t w = 1; w < g.workers.size(); ++w) g.workers[w]->add_acceptor(i, actual);
      g.bound.push_back(actual);
    } catch (const std::system_error& e) {
      g.workers.clear();
      g.contexts.clear();
      g.bound.clear();
      throw std::system_error(e.code(), "cannot listen on " + g.shared->listeners[i].options.address + ":" +
                                            std::to_string(wanted.port()));
    }
  }
  // Labelled by the bound address (port 0 became a real one); set before any worker runs.
  if (g.metrics)
    for (std::size_t i = 0; i < g.shared->listeners.size(); ++i)
      g.shared->listeners[i].metrics = &g.metrics->listener(listener_label(g.shared->listeners[i].options, g.bound[i]));
  for (auto& w : g.workers) w->start();
  for (auto& u : g.shared->upstreams) u->start_resolving(g.workers[0]->executor());
  for (auto& ctx : g.contexts) g.threads.emplace_back([c = ctx.get()] { c->run(); });
  g.started = true;
}

void Gateway::stop() {
  Impl& g = *impl_;
  std::lock_guard lock(g.mu);
  if (!g.started || g.stopping) return;
  g.stopping = true;
  const auto deadline = std::chrono::steady_clock::now() + g.options.drain_timeout;
  for (auto& u : g.shared->upstreams) u->stop_resolving();
  for (auto& w : g.workers) {
    detail::Worker* worker = w.get();
    asio::post(worker->executor(), [worker, deadline] { worker->drain(deadline); });
  }
}

void Gateway::wait() {
  Impl& g = *impl_;
  for (auto& t : g.threads)
    if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
}

std::vector<asio::ip::tcp::endpoint> Gateway::local_endpoints() const {
  std::lock_guard lock(impl_->mu);
  return impl_->bound;
}

}  // namespace gatehouse
