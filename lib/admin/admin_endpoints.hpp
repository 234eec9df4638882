// The admin API's endpoints: local-handler routes over the state the gateway shares with them.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "gatehouse/admin.hpp"
#include "gatehouse/route.hpp"
#include "gatehouse/upstream.hpp"

namespace gatehouse {
class BanList;
}

namespace gatehouse::detail {

/// What GET /readyz reports.
enum class Readiness : unsigned char { starting, ready, draining };

/// Read by the handlers on the admin thread; readiness is set by the gateway from any thread.
struct AdminState {
  AdminOptions options;
  /// The upstreams of the configuration in force, in route order (replaced on every reload).
  std::atomic<std::shared_ptr<const std::vector<std::shared_ptr<Upstream>>>> upstreams;
  std::function<void()> stop_gateway;                ///< Gateway::stop()
  std::atomic<Readiness> readiness{Readiness::starting};
  std::atomic<std::shared_ptr<BanList>> bans{};  ///< set by the gateway at start and reload
};

/// One exact-path route per endpoint (GET /livez, /readyz, /metrics, /config, /upstreams, an index
/// at /; POST /drain, /reload). Each checks its method itself, so that a wrong one gets 405 with
/// an Allow header.
std::vector<Route> admin_routes(const std::shared_ptr<AdminState>& state);

}  // namespace gatehouse::detail
