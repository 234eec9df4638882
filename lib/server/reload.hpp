// Reload: how the listeners of a new snapshot relate to the running one's, and binding the new
// ones before anything changes (Gateway::reload; start() is a reload from nothing).
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <asio/any_io_executor.hpp>

#include "server/worker.hpp"

namespace gatehouse::detail {

/// The listeners a new snapshot adds, removes and keeps.
struct ListenerChanges {
  std::vector<std::size_t> added;      // indices in the new snapshot's listeners: they need sockets
  std::vector<std::uint64_t> removed;  // ids of running listeners the new snapshot lacks
  std::size_t kept = 0;
};

/// Gives every listener of `next` its id. A running listener with the same address, configured
/// port and TLS mode (matched in order when several share those) passes on its id, the address
/// it is bound to, so that its sockets stay (port 0 keeps the port it got), and its connection
/// counts (its connections still count against the new limits); TLS certificates,
/// name, backlog and routes may differ. The others get fresh ids from `next_id`. `running` may be
/// null (start()).
ListenerChanges match_listeners(const GatewayShared* running, GatewayShared& next, std::uint64_t& next_id);

/// Binds the listeners `added` of `next` once per worker: for the first worker first (port 0
/// becomes a real port, written to next.listeners[i].bound), then for the others on that exact
/// address. Result: per worker, its sockets. Throws std::system_error naming the address; the
/// sockets bound so far are closed.
std::vector<std::vector<BoundAcceptor>> bind_listeners(std::size_t workers, GatewayShared& next,
                                                       const std::vector<std::size_t>& added);

/// The workers still switching to a new snapshot.
class Handover {
 public:
  /// Until every worker counted has switched, or `timeout` passed.
  void wait(std::chrono::milliseconds timeout);

 private:
  friend std::shared_ptr<Handover> install_everywhere(const std::vector<std::unique_ptr<Worker>>&,
                                                      std::shared_ptr<const GatewayShared>,
                                                      std::vector<std::vector<BoundAcceptor>>,
                                                      const std::function<bool(std::size_t)>&);
  void done();
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t left_ = 0;
};

/// Hands `next` and the sockets bound for it (`opened`, per worker) to every worker
/// (Worker::install on its own executor). Once the result's wait() returned, a request that
/// arrives sees `next`. Workers for which `on_its_thread(w)` is true (the caller is a request
/// handler on it) are not counted: waiting for them would never end; they switch as soon as the
/// caller returns to its event loop.
std::shared_ptr<Handover> install_everywhere(const std::vector<std::unique_ptr<Worker>>& workers,
                                             std::shared_ptr<const GatewayShared> next,
                                             std::vector<std::vector<BoundAcceptor>> opened,
                                             const std::function<bool(std::size_t)>& on_its_thread);

/// Upstreams `next` adds start resolving their DNS names and their health checks on `ex`; those it
/// drops stop (requests
/// still using them go on with the addresses they have).
void switch_upstreams(const GatewayShared& running, const GatewayShared& next, const asio::any_io_executor& ex);

}  // namespace gatehouse::detail
