// A worker: one executor's share of the gateway — its acceptors, buffers, upstream pools and
// connections. Everything here is touched only from the worker's own executor: no locks.
#pragma once
#include <chrono>
#include <cstddef>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include "gatehouse/gateway.hpp"
#include "http1/parser.hpp"
#include "net/cidr.hpp"
#include "net/stream.hpp"
#include "server/router.hpp"

namespace gatehouse::detail {

/// A listener's settings plus what start() derived from them.
struct ListenerRuntime {
  ListenerOptions options;
  std::shared_ptr<asio::ssl::context> tls;  // null for plain TCP
  tcp::endpoint bound;
  const Router* router = nullptr;  // the routes this listener serves (owned by GatewayShared)
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
  std::vector<std::shared_ptr<const Middleware>> global;  // keeps the router's raw pointers valid
};

/// Fixed-size I/O buffers, recycled per worker so an idle connection holds none.
class BufferPool {
 public:
  static constexpr std::size_t kSize = 16 * 1024;
  ~BufferPool();
  char* get();
  void put(char* b) noexcept;

 private:
  std::vector<char*> free_;
};

/// A buffer taken from a pool and given back on destruction.
class PooledBuffer {
 public:
  PooledBuffer() = default;
  explicit PooledBuffer(BufferPool& pool) : pool_(&pool), data_(pool.get()) {}
  PooledBuffer(PooledBuffer&& o) noexcept : pool_(o.pool_), data_(std::exchange(o.data_, nullptr)) {}
  PooledBuffer& operator=(PooledBuffer&& o) noexcept {
    release();
    pool_ = o.pool_;
    data_ = std::exchange(o.data_, nullptr);
    return *this;
  }
  ~PooledBuffer() { release(); }
  void release() noexcept {
    if (data_) pool_->put(std::exchange(data_, nullptr));
  }
  char* data() const noexcept { return data_; }
  explicit operator bool() const noexcept { return data_ != nullptr; }

 private:
  BufferPool* pool_ = nullptr;
  char* data_ = nullptr;
};

/// A connection to an upstream endpoint, kept alive between requests.
struct UpstreamConnection {
  UpstreamConnection(Stream s, std::string label)
      : stream(std::move(s)), label(std::move(label)), created(std::chrono::steady_clock::now()) {}
  Stream stream;
  Http1Parser parser{Http1Parser::Kind::response};
  std::string label;
  std::chrono::steady_clock::time_point created;
  std::chrono::steady_clock::time_point idle_since;
  bool reused = false;
};

/// Per worker and upstream: idle connections and the round-robin position.
class UpstreamPool {
 public:
  /// An idle connection still fit for a request, or null. Connections past their age or idle
  /// time, or with unexpected bytes or EOF waiting, are closed.
  std::unique_ptr<UpstreamConnection> take(const UpstreamOptions& o);
  void put(std::unique_ptr<UpstreamConnection> c, const UpstreamOptions& o);
  void clear() noexcept { idle_.clear(); }
  std::size_t next_index() noexcept { return rr_++; }

 private:
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;
  std::size_t rr_ = 0;
};

class Connection;

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

  const GatewayShared& shared() const noexcept { return *shared_; }
  const asio::any_io_executor& executor() const noexcept { return executor_; }
  BufferPool& buffers() noexcept { return buffers_; }
  UpstreamPool& pool_for(const Upstream* u) { return pools_[u]; }
  bool draining() const noexcept { return draining_; }
  void attach(Connection* c) { connections_.insert(c); }
  void detach(Connection* c) noexcept;

 private:
  asio::awaitable<void> accept_loop(std::size_t index);
  void close_all_connections() noexcept;

  std::shared_ptr<const GatewayShared> shared_;
  asio::any_io_executor executor_;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;  // by listener index
  BufferPool buffers_;
  std::unordered_map<const Upstream*, UpstreamPool> pools_;
  std::unordered_set<Connection*> connections_;
  std::unique_ptr<asio::steady_timer> drain_timer_;
  bool draining_ = false;
};

}  // namespace gatehouse::detail
