// A worker: one executor's share of the gateway — its acceptors, buffers, recycled exchanges,
// upstream pools and client sessions. Everything here is touched only from the worker's own
// executor: no locks.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include "core/exchange_access.hpp"
#include "gatehouse/gateway.hpp"
#include "http1/parser.hpp"
#include "net/accept_backoff.hpp"
#include "net/buffer_pool.hpp"
#include "net/deadline_queue.hpp"
#include "net/slab_pool.hpp"
#include "net/cidr.hpp"
#include "net/stream.hpp"
#include "observe/gateway_metrics.hpp"
#include "observe/trace_context.hpp"
#include "proxy/upstream_pool.hpp"
#include "server/connection_limits.hpp"
#include "server/router.hpp"
#include "util/recycler.hpp"

namespace gatehouse::detail {

/// A listener's settings plus what start() derived from them.
struct ListenerRuntime {
  ListenerOptions options;
  std::shared_ptr<asio::ssl::context> tls;  // null for plain TCP
  tcp::endpoint bound;
  const Router* router = nullptr;  // the routes this listener serves (owned by GatewayShared)
  const ListenerMetrics* metrics = nullptr;  // its series (owned by GatewayMetrics); null: off
  TracePolicy trace;                          // its W3C trace-context handling (off by default)
  /// Its open connections, all workers together; a reload that keeps the listener keeps these.
  std::shared_ptr<ListenerConnections> connections = std::make_shared<ListenerConnections>();
  /// Names the listening socket across reloads: a listener a reload keeps has the same id (and the
  /// same sockets) in the next snapshot (server/reload.hpp).
  std::uint64_t id = 0;
};

/// One configuration of the gateway (a snapshot): immutable, shared by all workers. A reload
/// builds a new one and each worker switches to it; requests in flight keep theirs.
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
  std::shared_ptr<GatewayMetrics> metrics;                 // null: metrics off; the same in every snapshot
  std::vector<const RouteMetrics*> route_metrics;          // by CompiledRoute::index
  std::uint64_t generation = 0;  // 1 for start(), then one more per reload

  /// The listener with `id`, or null when this snapshot has none.
  const ListenerRuntime* find_listener(std::uint64_t listener_id) const noexcept {
    for (const auto& l : listeners)
      if (l.id == listener_id) return &l;
    return nullptr;
  }
};

/// A worker's reference to a snapshot. Connections hold this one, not the GatewayShared itself, so
/// that their reference counting stays on a cache line of their own worker.
struct WorkerSnapshot {
  std::shared_ptr<const GatewayShared> shared;
};
using WorkerSnapshotPtr = std::shared_ptr<const WorkerSnapshot>;

/// A listening socket bound for a worker, not yet part of any event loop: the worker registers it
/// with its own on its own thread (Worker::add_acceptor, Worker::install). Closed unless adopted.
class BoundAcceptor {
 public:
  /// Binds `ep` with SO_REUSEPORT (every worker listens on the same port; the kernel spreads
  /// connections across them) and listens. Throws std::system_error.
  BoundAcceptor(std::uint64_t listener_id, const tcp::endpoint& ep, int backlog);
  BoundAcceptor(BoundAcceptor&& other) noexcept;
  BoundAcceptor& operator=(BoundAcceptor&&) = delete;
  ~BoundAcceptor();

  std::uint64_t listener_id() const noexcept { return listener_id_; }
  const tcp::endpoint& local_endpoint() const noexcept { return local_; }
  /// An acceptor on `ex` that owns the socket from now on.
  std::unique_ptr<tcp::acceptor> adopt(const asio::any_io_executor& ex);

 private:
  std::uint64_t listener_id_;
  tcp::endpoint local_;
  int fd_ = -1;
};

/// A client connection as the worker sees it (HTTP/1 today). Linked into the worker's list
/// without allocating, so that a drain reaches every one.
class ClientSession {
 public:
  virtual ~ClientSession() = default;
  /// Drain: close now if between requests, otherwise after the current response.
  virtual void close_if_idle() noexcept = 0;
  /// The listener (ListenerRuntime::id) the connection came in on.
  virtual std::uint64_t listener_id() const noexcept = 0;
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
  /// Adopts a socket bound for one of the listeners of the current snapshot (before start()).
  void add_acceptor(BoundAcceptor acceptor);
  /// Starts the accept loops (on the worker's executor).
  void start();
  /// Reload, on the worker's executor: `next` becomes the snapshot of new requests, `opened`
  /// (bound for listeners `next` adds) start accepting, and listeners `next` no longer has stop:
  /// what the kernel already queued on them is still served, their idle connections close, the
  /// busy ones after their response. Unchanged listeners keep their sockets.
  void install(std::shared_ptr<const GatewayShared> next, std::vector<BoundAcceptor> opened);
  /// Graceful stop, on the worker's executor: close acceptors and idle connections, let active
  /// ones finish, and close what is left when `deadline` passes.
  void drain(std::chrono::steady_clock::time_point deadline);

  /// Idle keep-alive connections keep their read buffer for a while (a quick next request costs
  /// no extra syscall); the sweep takes it back after one to two of these intervals.
  static constexpr std::chrono::milliseconds kSweepInterval{500};
  /// Counts sweeps; sessions note it when they go idle.
  unsigned tick() const noexcept { return tick_; }
  /// At most this many sessions wait for their next request inside their coroutine (cheapest
  /// when it comes); the others wait without it, holding no frames (see Http1Session::wait_hot).
  static constexpr unsigned kCoroutineWaits = 64;
  /// One of those places, while it is held; false when all are taken.
  class CoroutineWait {
   public:
    explicit CoroutineWait(Worker& w) noexcept
        : worker_(w.coroutine_waits_ < kCoroutineWaits ? &w : nullptr) {
      if (worker_) ++worker_->coroutine_waits_;
    }
    ~CoroutineWait() {
      if (worker_) --worker_->coroutine_waits_;
    }
    CoroutineWait(const CoroutineWait&) = delete;
    CoroutineWait& operator=(const CoroutineWait&) = delete;
    explicit operator bool() const noexcept { return worker_ != nullptr; }

   private:
    Worker* worker_;
  };
  /// Exchanges in progress on this worker (sessions count theirs in and out).
  void exchange_started() noexcept { ++busy_; }
  void exchange_ended() noexcept { --busy_; }
  /// Before waiting for a peer that cannot have answered yet: true when other exchanges are in
  /// progress, so yielding to them first likely spares a read that finds nothing.
  bool others_busy() const noexcept { return busy_ > 1; }

  /// The current snapshot (what a new request runs on).
  const GatewayShared& shared() const noexcept { return *snapshot_->shared; }
  const WorkerSnapshotPtr& snapshot() const noexcept { return snapshot_; }
  const asio::any_io_executor& executor() const noexcept { return executor_; }
  BufferPool& buffers() noexcept { return buffers_; }
  /// The deadlines of this worker's sessions (one timer for all).
  DeadlineQueue& deadlines() noexcept { return deadlines_; }
  /// Blocks for this worker's client sessions (made on first use; every caller passes the same
  /// size).
  SlabPool& session_blocks(std::size_t block_size) {
    if (!session_blocks_) session_blocks_ = std::make_unique<SlabPool>(block_size);
    return *session_blocks_;
  }
  ExchangePool& exchanges() noexcept { return exchanges_; }
  /// HTTP/1 request parsers, held by a session during a request only.
  Recycler<Http1Parser>& request_parsers() noexcept { return request_parsers_; }
  UpstreamPool& pool_for(const Upstream& u);
  bool draining() const noexcept { return draining_; }
  /// This worker's metrics (its own shard); null when the gateway's metrics are off.
  WorkerMetrics* metrics() noexcept { return metrics_ ? &*metrics_ : nullptr; }
  /// Draining and no client connection left.
  bool drained() const noexcept { return draining_ && session_count_ == 0; }
  void attach(ClientSession* s) noexcept;
  void detach(ClientSession* s) noexcept;

 private:
  struct Acceptor;
  asio::awaitable<void> accept_loop(std::shared_ptr<Acceptor> acceptor);
  /// The two ends of an accept backoff episode: a warning (and the metric) when it starts, a line
  /// when accepting works again.
  void accept_paused(const Acceptor& acceptor, const asio::error_code& ec) noexcept;
  void accept_resumed(const Acceptor& acceptor, AcceptBackoff& backoff) noexcept;
  void serve(Acceptor& acceptor, tcp::socket socket);
  /// A connection over one of the listener's limits: counted, reported, closed.
  void refuse(const ListenerRuntime& listener, tcp::socket& socket, const tcp::endpoint& peer,
              ListenerConnections::Admit why) noexcept;
  /// Serves the connections already queued on `acceptor`, then closes it: closing a listening
  /// socket resets what waits in its queue.
  void close_acceptor(Acceptor& acceptor) noexcept;
  /// Drops the pools of upstreams that reloads removed, once no request can use them.
  void forget_retired_pools();
  static bool named(const GatewayShared& snapshot, const Upstream* upstream) noexcept;
  asio::awaitable<void> sweep_loop();
  void close_all_sessions() noexcept;
  template <class Fn>
  void for_each_session(Fn fn);

  /// A pool and the upstream it serves, kept alive together (the key is the upstream's address).
  struct PoolEntry {
    std::shared_ptr<const Upstream> upstream;
    std::unique_ptr<UpstreamPool> pool;
  };

  WorkerSnapshotPtr snapshot_;
  asio::any_io_executor executor_;
  std::vector<std::shared_ptr<Acceptor>> acceptors_;
  /// Snapshots replaced by a reload that requests may still run on, and the upstreams they named
  /// that the current one does not: those pools stay until the last such snapshot is gone.
  std::vector<std::weak_ptr<const WorkerSnapshot>> retired_;
  std::vector<const Upstream*> stale_pools_;
  BufferPool buffers_;
  DeadlineQueue deadlines_;
  std::unique_ptr<SlabPool> session_blocks_;  // outlives every session (sessions end before workers)
  ExchangePool exchanges_;
  Recycler<Http1Parser> request_parsers_;
  std::unordered_map<const Upstream*, PoolEntry> pools_;
  std::optional<WorkerMetrics> metrics_;
  ClientSession* sessions_ = nullptr;  // head of the intrusive list
  std::size_t session_count_ = 0;
  std::unique_ptr<asio::steady_timer> drain_timer_;
  asio::steady_timer sweep_timer_;
  unsigned tick_ = 0;
  unsigned coroutine_waits_ = 0;  // see CoroutineWait
  std::size_t busy_ = 0;
  bool draining_ = false;
};

}  // namespace gatehouse::detail
