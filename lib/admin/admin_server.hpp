// The admin listener: a small gateway of its own (one worker, its own router of admin routes,
// none of the application's middleware), so that the public listeners can never route to it. It
// reuses the library's HTTP/1 session, router and local-handler origins as they are.
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/ip/tcp.hpp>

#include "admin/admin_endpoints.hpp"
#include "gatehouse/admin.hpp"
#include "gatehouse/gateway.hpp"

namespace gatehouse::detail {

class AdminServer {
 public:
  /// Checks `options`: std::invalid_argument for a bad address or token, or an address other
  /// than loopback with neither a token nor client certificates. With `host`, it runs on that
  /// executor (an embedded gateway); otherwise on a thread of its own.
  AdminServer(AdminOptions options, std::vector<std::shared_ptr<Upstream>> upstreams,
              std::function<void()> stop_gateway, std::optional<asio::any_io_executor> host);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  /// Binds and serves; readiness starts as `starting`. std::system_error if the port is taken,
  /// std::runtime_error if the TLS files do not load.
  void start();
  void set_readiness(Readiness r) noexcept;
  /// The upstreams GET /upstreams shows: those of the configuration in force (after a reload).
  void set_upstreams(std::vector<std::shared_ptr<Upstream>> upstreams);
  /// What GET/POST/DELETE /bans work on (null: 404).
  void set_bans(std::shared_ptr<BanList> bans) noexcept;
  /// Stops accepting; admin connections close once their request is answered.
  void stop();
  /// Blocks until its own thread ended (returns at once on a host executor).
  void wait();
  /// On a host executor: stop() once `drained()` says so or `deadline` passes, checked every
  /// 20 ms on that executor, so that the host's event loop ends with the public drain.
  void stop_when(std::function<bool()> drained, std::chrono::steady_clock::time_point deadline);
  /// The bound address (after start()).
  asio::ip::tcp::endpoint endpoint() const;

 private:
  std::shared_ptr<AdminState> state_;
  std::unique_ptr<Gateway> server_;
  std::optional<asio::any_io_executor> host_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // watched by stop_when's timer
};

}  // namespace gatehouse::detail
