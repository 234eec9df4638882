#include "gatehouse/gateway.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "server/reload.hpp"
#include "server/snapshot.hpp"
#include "gatehouse/middleware/request_id.hpp"
#include "admin/admin_server.hpp"
#include "observe/upstream_health_metrics.hpp"
#include "core/handler_origin.hpp"
#include "proxy/upstream_call.hpp"
#include "server/worker.hpp"
#include "gatehouse/bans.hpp"
#include "util/log.hpp"

namespace gatehouse {

using detail::tcp;

struct Gateway::Impl {
  GatewayDefinition definition;  // in force (before start(): registered so far)
  std::optional<asio::any_io_executor> host_executor;
  std::shared_ptr<MetricsRegistry> registry;         // null: metrics off
  std::shared_ptr<detail::GatewayMetrics> metrics;  // the gateway's families in `registry`
  std::shared_ptr<detail::UpstreamsInForce> upstreams = std::make_shared<detail::UpstreamsInForce>();
  std::optional<detail::UpstreamHealthMetrics> health_metrics;  // reads `upstreams` when scraped

  std::shared_ptr<const detail::GatewayShared> shared;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<std::unique_ptr<detail::Worker>> workers;
  std::vector<std::thread> threads;
  std::uint64_t next_listener_id = 1;
  mutable std::mutex mu;
  std::mutex reload_mu;  // one reload at a time, held while the workers switch (mu is not)
  bool started = false;
  bool stopping = false;
  std::optional<AdminOptions> admin;
  // Declared last, destroyed first: its drain check (host executor) reads the workers.
  std::unique_ptr<detail::AdminServer> admin_server;

  std::vector<const BanList*> bans_with_metrics;  // attach_metrics once per list

  void init_metrics();
  /// The ban list of `options` reports to its security events, counts into our registry and is
  /// what the admin API shows.
  void wire_bans(const GatewayOptions& options);
};

void Gateway::Impl::wire_bans(const GatewayOptions& options) {
  const auto& bans = options.bans;
  if (admin_server) admin_server->set_bans(bans);
  if (!bans) return;
  bans->set_event_reporter(options.security_events);
  if (registry && std::find(bans_with_metrics.begin(), bans_with_metrics.end(), bans.get()) == bans_with_metrics.end()) {
    bans->attach_metrics(*registry);
    bans_with_metrics.push_back(bans.get());
  }
}

// Once, at construction: every snapshot (start(), each reload) counts into the same families.
void Gateway::Impl::init_metrics() {
  const MetricsOptions& m = definition.options.metrics;
  if (!m.enabled) return;
  registry = m.registry ? m.registry : std::make_shared<MetricsRegistry>();
  metrics = std::make_shared<detail::GatewayMetrics>(registry);
  health_metrics.emplace(*registry, upstreams);
}

Gateway::Gateway(GatewayOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->definition.options = std::move(options);
  impl_->init_metrics();
}

Gateway::Gateway(asio::any_io_executor executor, GatewayOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->definition.options = std::move(options);
  impl_->host_executor = std::move(executor);
  impl_->init_metrics();
}

Gateway::~Gateway() {
  stop();
  wait();
}

Gateway& Gateway::listen(ListenerOptions listener) {
  impl_->definition.listeners.push_back(std::move(listener));
  return *this;
}

Gateway& Gateway::use(std::shared_ptr<const Middleware> middleware) {
  if (!middleware) throw std::invalid_argument("Gateway::use: null middleware");
  impl_->definition.middleware.push_back(std::move(middleware));
  return *this;
}

Gateway& Gateway::route(Route route) {
  impl_->definition.routes.push_back(std::move(route));
  return *this;
}

Gateway& Gateway::admin(AdminOptions options) {
  impl_->admin = std::move(options);
  return *this;
}

const GatewayOptions& Gateway::options() const noexcept { return impl_->definition.options; }

const std::shared_ptr<MetricsRegistry>& Gateway::metrics() const noexcept { return impl_->registry; }

void Gateway::start() {
  Impl& g = *impl_;
  std::unique_ptr<detail::AdminServer> failed_admin;  // joined after the lock is released
  std::lock_guard lock(g.mu);
  if (g.started) throw std::logic_error("Gateway::start called twice");
  if (g.definition.listeners.empty()) throw std::invalid_argument("gateway has no listener");
  std::shared_ptr<detail::GatewayShared> snapshot = detail::build_snapshot(g.definition, g.metrics);
  snapshot->generation = 1;
  const detail::ListenerChanges listeners = detail::match_listeners(nullptr, *snapshot, g.next_listener_id);
  if (g.admin) {
    // First, so that probes see "starting" until the public listeners serve.
    auto admin = std::make_unique<detail::AdminServer>(*g.admin, snapshot->upstreams, [this] { stop(); },
                                                       g.host_executor);
    admin->start();
    g.admin_server = std::move(admin);
  }

  std::vector<asio::any_io_executor> executors;
  if (g.host_executor) {
    executors.push_back(*g.host_executor);
  } else {
    const GatewayOptions& o = g.definition.options;
    unsigned n = o.workers ? o.workers : std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) {
      // Sockets and timers of a worker are used by that worker's thread alone, so the reactor
      // needs no locks; the scheduler keeps its own (stop() posts from other threads).
      g.contexts.push_back(std::make_unique<asio::io_context>(ASIO_CONCURRENCY_HINT_UNSAFE_IO));
      executors.push_back(g.contexts.back()->get_executor());
    }
  }
  std::vector<std::vector<detail::BoundAcceptor>> bound;
  try {
    bound = detail::bind_listeners(executors.size(), *snapshot, listeners.added);
    detail::attach_listener_metrics(*snapshot);
  } catch (...) {
    failed_admin = std::move(g.admin_server);
    g.contexts.clear();
    throw;
  }
  g.shared = snapshot;
  g.upstreams->set(snapshot->upstreams);
  for (std::size_t w = 0; w < executors.size(); ++w) {
    g.workers.push_back(std::make_unique<detail::Worker>(g.shared, executors[w]));
    for (auto& acceptor : bound[w]) g.workers.back()->add_acceptor(std::move(acceptor));
  }
  for (auto& w : g.workers) w->start();
  for (auto& u : g.shared->upstreams) {
    u->start_resolving(g.workers[0]->executor());
    u->start_health_checks(g.workers[0]->executor());
  }
  for (auto& ctx : g.contexts) g.threads.emplace_back([c = ctx.get()] { c->run(); });
  g.started = true;
  g.wire_bans(g.shared->options);
  if (g.admin_server) g.admin_server->set_readiness(detail::Readiness::ready);
}

ReloadSummary Gateway::reload(GatewayDefinition next) {
  Impl& g = *impl_;
  std::lock_guard serialized(g.reload_mu);
  std::unique_lock lock(g.mu);
  if (g.stopping) throw std::logic_error("Gateway::reload: the gateway is stopping");
  // The metric families live as long as the gateway: a reload counts into the same registry.
  if (next.options.metrics.enabled != g.definition.options.metrics.enabled)
    detail::log(nullptr, LogLevel::warning, "reload: turning metrics on or off takes effect at the next start only");
  next.options.metrics = g.definition.options.metrics;
  if (!g.started) {
    detail::build_snapshot(next);  // the checks start() makes, so that a problem shows now
    g.definition = std::move(next);
    return {};
  }
  if (next.listeners.empty()) throw std::invalid_argument("gateway has no listener");
  if (next.options.workers != g.definition.options.workers) {
    detail::log(nullptr, LogLevel::warning, "reload: a new number of workers takes effect at the next start only",
                {{"workers", std::to_string(g.definition.options.workers)}});
    next.options.workers = g.definition.options.workers;
  }
  // Everything that can fail happens before the first change.
  std::shared_ptr<detail::GatewayShared> snapshot = detail::build_snapshot(next, g.metrics);
  snapshot->generation = g.shared->generation + 1;
  std::uint64_t next_id = g.next_listener_id;
  const detail::ListenerChanges listeners = detail::match_listeners(g.shared.get(), *snapshot, next_id);
  std::vector<std::vector<detail::BoundAcceptor>> opened =
      detail::bind_listeners(g.workers.size(), *snapshot, listeners.added);
  detail::attach_listener_metrics(*snapshot);

  g.next_listener_id = next_id;
  detail::switch_upstreams(*g.shared, *snapshot, g.workers[0]->executor());
  if (g.admin_server) g.admin_server->set_upstreams(snapshot->upstreams);
  g.upstreams->set(snapshot->upstreams);
  // Requests arriving once reload() returned must see the new snapshot: wait for the workers,
  // except the one a request handler calling this runs on (waiting for it would never end).
  auto on_its_thread = [&g](std::size_t w) {
    if (g.host_executor) {
      const auto* io = g.host_executor->target<asio::io_context::executor_type>();
      return !io || io->running_in_this_thread();  // unknown executor: do not wait
    }
    return g.threads.at(w).get_id() == std::this_thread::get_id();
  };
  auto handover = detail::install_everywhere(g.workers, snapshot, std::move(opened), on_its_thread);
  g.shared = std::move(snapshot);
  g.definition = std::move(next);
  g.wire_bans(g.shared->options);
  const ReloadSummary summary{g.shared->generation, listeners.added.size(), listeners.removed.size(), listeners.kept};
  // Not under `mu`: a request handler may be calling local_endpoints() on a worker meanwhile.
  lock.unlock();
  handover->wait(std::chrono::seconds(5));
  return summary;
}

GatewayDefinition Gateway::definition() const {
  std::lock_guard lock(impl_->mu);
  return impl_->definition;
}

void Gateway::stop() {
  Impl& g = *impl_;
  std::lock_guard lock(g.mu);
  if (!g.started || g.stopping) return;
  g.stopping = true;
  const auto deadline = std::chrono::steady_clock::now() + g.definition.options.drain_timeout;
  if (g.admin_server) {
    g.admin_server->set_readiness(detail::Readiness::draining);
    // On a host executor nothing joins: the admin listener closes when the workers are done.
    if (g.host_executor)
      g.admin_server->stop_when([w = g.workers.front().get()] { return w->drained(); }, deadline);
  }
  for (auto& u : g.shared->upstreams) {
    u->stop_resolving();
    u->stop_health_checks();
  }
  for (auto& w : g.workers) {
    detail::Worker* worker = w.get();
    asio::post(worker->executor(), [worker, deadline] { worker->drain(deadline); });
  }
}

void Gateway::wait() {
  Impl& g = *impl_;
  for (auto& t : g.threads)
    if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
  // The admin listener answered (readiness 503) during the drain; it closes after it.
  if (g.admin_server && !g.host_executor) {
    g.admin_server->stop();
    g.admin_server->wait();
  }
}

std::vector<asio::ip::tcp::endpoint> Gateway::local_endpoints() const {
  std::lock_guard lock(impl_->mu);
  std::vector<asio::ip::tcp::endpoint> out;
  if (impl_->shared)
    for (const auto& l : impl_->shared->listeners) out.push_back(l.bound);
  return out;
}

std::optional<asio::ip::tcp::endpoint> Gateway::admin_endpoint() const {
  std::lock_guard lock(impl_->mu);
  if (!impl_->admin_server) return std::nullopt;
  return impl_->admin_server->endpoint();
}

}  // namespace gatehouse
