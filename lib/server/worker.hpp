// A worker: one executor's share of the gateway — its acceptors, buffers, recycled exchanges,
// upstream pools and client sessions. Everything here is touched only from the worker's own
// executor: no locks.
#pragma once
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include "core/exchange_access.hpp"
#include "gatehouse/gateway.hpp"
#include "http1/parser.hpp"
#include "net/buffer_pool.hpp"
#include "net/cidr.hpp"
#include "net/stream.hpp"
#include "observe/gateway_metrics.hpp"
#include "proxy/upstream_pool.hpp"
#include "server/router.hpp"

namespace gatehouse::detail {

/// A listener's settings plus what start() derived from them.
struct ListenerRuntime {
  ListenerOptions options;
  std::shared_ptr<asio::ssl::context> tls;  // null for plain TCP
  tcp::endpoint bound;
  const Router* router = nullptr;  // the routes this listener serves (owned by GatewayShared)
  const ListenerMetrics* metrics = nullptr;  // its series (owned by GatewayMetrics); null: off
};

/// Immutable while the gateway runs; shared by all workers.
struct GatewayShared {
  GatewayOptions options;
  ParseLimits parse_limits;
  CidrSet trusted_proxies;
  /// One router per distinct set of routes served by some listener (most gateways: one).
  std::vector<std::unique_ptr<Router>> routers;
  std::vector<ListenerRuntime> listeners;
  std::vector<std::shared_ptr<Upstream>> upstreams;
  std::vector<std::unique_ptr<const OriginCall>> origins;   // one per route; routers point here
  std::vector<std::shared_ptr<const Middleware>> global;  // keeps the router's raw pointers valid
  std::shared_ptr<GatewayMetrics> metrics;                 // null: metrics off
  std::vector<const RouteMetrics*> route_metrics;          // by CompiledRoute::index
};

/// A client connection as the worker sees it (HTTP/1 today). Linked into the worker's list
/// without allocating, so that a drain reaches every one.
class ClientSession {
 public:
  virtual ~ClientSession() = default;
  /// Drain: close now if between requests, otherwise after the current response.
  virtual void close_if_idle() noexcept = 0;
  virtual void force_close() noexcept = 0;
  /// The worker's periodic sweep (every Worker::kSweepInterval): a session that has been idle
  /// since before `tick - 1` gives back the buffers it keeps for a quick next request.
  virtual void sweep_idle(unsigned tick) noexcept = 0;

 private:
  friend class Worker;
  ClientSession* prev_ = nullptr;
  ClientSession* next_ = nullptr;
};

class Worker {
 public:
  Worker(std::shared_ptr<const GatewayShared> shared, asio::any_io_executor ex);
  ~Worker();
  /// Adds this worker's acceptor for listener `index`, bound to `ep` (SO_REUSEPORT).
  void add_acceptor(std::size_t index, const tcp::endpoint& ep);
  tcp::endpoint acceptor_endpoint(std::size_t index) const;
  /// Starts the accept loops (on the worker's executor).
  void start();
  /// Graceful stop, on the worker's executor: close acceptors and idle connections, let active
  /// ones finish, and close what is left when `deadline` passes.
  void drain(std::chrono::steady_clock::time_point deadline);

  /// Idle keep-alive connections keep their read buffer for a while (a quick next request costs
  /// no extra syscall); the sweep takes it back after one to two of these intervals.
  static constexpr std::chrono::milliseconds kSweepInterval{500};
  /// Counts sweeps; sessions note it when they go idle.
  unsigned tick() const noexcept { return tick_; }
  /// Exchanges in progress on this worker (sessions count theirs in and out).
  void exchange_started() noexcept { ++busy_; }
  void exchange_ended() noexcept { --busy_; }
  /// Before waiting for a peer that cannot have answered yet: true when other exchanges are in
  /// progress, so yielding to them first likely spares a read that finds nothing.
  bool others_busy() const noexcept { return busy_ > 1; }

  const GatewayShared& shared() const noexcept { return *shared_; }
  const asio::any_io_executor& executor() const noexcept { return executor_; }
  BufferPool& buffers() noexcept { return buffers_; }
  ExchangePool& exchanges() noexcept { return exchanges_; }
  UpstreamPool& pool_for(const Upstream& u);
  bool draining() const noexcept { return draining_; }
  /// This worker's metrics (its own shard); null when the gateway's metrics are off.
  WorkerMetrics* metrics() noexcept { return metrics_ ? &*metrics_ : nullptr; }
  void attach(ClientSession* s) noexcept;
  void detach(ClientSession* s) noexcept;

 private:
  asio::awaitable<void> accept_loop(std::size_t index);
  asio::awaitable<void> sweep_loop();
  void close_all_sessions() noexcept;
  template <class Fn>
  void for_each_session(Fn fn);

  std::shared_ptr<const GatewayShared> shared_;
  asio::any_io_executor executor_;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;  // by listener index
  BufferPool buffers_;
  ExchangePool exchanges_;
  std::unordered_map<const Upstream*, std::unique_ptr<UpstreamPool>> pools_;
  std::optional<WorkerMetrics> metrics_;
  ClientSession* sessions_ = nullptr;  // head of the intrusive list
  std::size_t session_count_ = 0;
  std::unique_ptr<asio::steady_timer> drain_timer_;
  asio::steady_timer sweep_timer_;
  unsigned tick_ = 0;
  std::size_t busy_ = 0;
  bool draining_ = false;
};

}  // namespace gatehouse::detail
