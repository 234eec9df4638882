#include "server/reload.hpp"

#include <string>
#include <system_error>
#include <utility>

#include <asio/post.hpp>

namespace gatehouse::detail {
namespace {

bool has(const std::vector<std::shared_ptr<Upstream>>& list, const Upstream* u) {
  for (const auto& x : list)
    if (x.get() == u) return true;
  return false;
}

// `next` may name the port a port-0 listener of `running` got.
bool same_socket(const ListenerRuntime& running, const ListenerRuntime& next) {
  return running.bound.address() == next.bound.address() &&
         (running.options.port == next.options.port || running.bound.port() == next.options.port) &&
         running.options.tls.has_value() == next.options.tls.has_value();
}

}  // namespace

ListenerChanges match_listeners(const GatewayShared* running, GatewayShared& next, std::uint64_t& next_id) {
  ListenerChanges changes;
  std::vector<bool> taken(running ? running->listeners.size() : 0, false);
  for (std::size_t i = 0; i < next.listeners.size(); ++i) {
    ListenerRuntime& l = next.listeners[i];
    bool matched = false;
    for (std::size_t k = 0; k < taken.size() && !matched; ++k) {
      const ListenerRuntime& old = running->listeners[k];
      if (taken[k] || !same_socket(old, l)) continue;
      taken[k] = matched = true;
      l.id = old.id;
      l.bound = old.bound;  // as bound: a port 0 listener keeps its port
      l.connections = old.connections;  // its open connections still count against its limits
    }
    if (matched) {
      ++changes.kept;
    } else {
      l.id = next_id++;
      changes.added.push_back(i);
    }
  }
  for (std::size_t k = 0; k < taken.size(); ++k)
    if (!taken[k]) changes.removed.push_back(running->listeners[k].id);
  return changes;
}

std::vector<std::vector<BoundAcceptor>> bind_listeners(std::size_t workers, GatewayShared& next,
                                                       const std::vector<std::size_t>& added) {
  std::vector<std::vector<BoundAcceptor>> out(workers);
  for (std::size_t i : added) {
    ListenerRuntime& l = next.listeners[i];
    const tcp::endpoint wanted = l.bound;
    try {
      for (std::size_t w = 0; w < workers; ++w) {
        BoundAcceptor socket(l.id, l.bound, l.options.backlog);
        if (w == 0) l.bound = socket.local_endpoint();
        out[w].push_back(std::move(socket));
      }
    } catch (const std::system_error& e) {
      throw std::system_error(e.code(), "cannot listen on " + l.options.address + ":" + std::to_string(wanted.port()));
    }
  }
  return out;
}

void Handover::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return left_ == 0; });
}

void Handover::done() {
  std::lock_guard lock(mu_);
  if (--left_ == 0) cv_.notify_all();
}

std::shared_ptr<Handover> install_everywhere(const std::vector<std::unique_ptr<Worker>>& workers,
                                             std::shared_ptr<const GatewayShared> next,
                                             std::vector<std::vector<BoundAcceptor>> opened,
                                             const std::function<bool(std::size_t)>& on_its_thread) {
  auto handover = std::make_shared<Handover>();
  std::vector<bool> counted(workers.size());
  for (std::size_t w = 0; w < workers.size(); ++w) counted[w] = !on_its_thread(w);
  {
    std::lock_guard lock(handover->mu_);
    for (bool c : counted) handover->left_ += c ? 1 : 0;
  }
  for (std::size_t w = 0; w < workers.size(); ++w) {
    Worker* worker = workers[w].get();
    const bool count = counted[w];
    asio::post(worker->executor(), [worker, next, sockets = std::move(opened[w]), handover, count]() mutable {
      worker->install(std::move(next), std::move(sockets));
      if (count) handover->done();
    });
  }
  return handover;
}

void switch_upstreams(const GatewayShared& running, const GatewayShared& next, const asio::any_io_executor& ex) {
  for (const auto& u : next.upstreams) {
    if (has(running.upstreams, u.get())) continue;
    u->start_resolving(ex);
    u->start_health_checks(ex);
  }
  for (const auto& u : running.upstreams) {
    if (has(next.upstreams, u.get())) continue;
    u->stop_resolving();
    u->stop_health_checks();
  }
}

}  // namespace gatehouse::detail
