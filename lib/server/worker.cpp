#include "server/worker.hpp"

#include "gatehouse/bans.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/steady_timer.hpp>

#include "http1/session.hpp"
#include "middleware/ip_filter_listener.hpp"
#include "observe/security_events_http.hpp"
#include "util/log.hpp"

namespace gatehouse::detail {
namespace {
void release_free_memory() noexcept {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}
}  // namespace

/// One listening socket of this worker. The accept loop holds it too, so a listener a reload
/// removes stays valid until its loop has ended.
struct Worker::Acceptor {
  std::uint64_t listener_id = 0;
  std::unique_ptr<tcp::acceptor> socket;
  /// The snapshot whose listener `listener_id` new connections are served with: the worker's
  /// current one, or the last one that had the listener once a reload removed it.
  WorkerSnapshotPtr snapshot;
  std::size_t listener = 0;  // index in snapshot->shared->listeners
};

BoundAcceptor::BoundAcceptor(std::uint64_t listener_id, const tcp::endpoint& ep, int backlog)
    : listener_id_(listener_id) {
  // A scratch event loop: the socket joins its worker's loop on the worker's thread.
  asio::io_context scratch(1);
  tcp::acceptor acc(scratch);
  acc.open(ep.protocol());
  acc.set_option(tcp::acceptor::reuse_address(true));
  // Every worker listens on the same port; the kernel spreads connections across them.
  acc.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
  if (ep.address().is_v6()) acc.set_option(asio::ip::v6_only(true));
  acc.bind(ep);
  acc.listen(backlog);
  local_ = acc.local_endpoint();
  fd_ = acc.release();
}

BoundAcceptor::BoundAcceptor(BoundAcceptor&& other) noexcept
    : listener_id_(other.listener_id_), local_(other.local_), fd_(std::exchange(other.fd_, -1)) {}

BoundAcceptor::~BoundAcceptor() {
  if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<tcp::acceptor> BoundAcceptor::adopt(const asio::any_io_executor& ex) {
  auto acc = std::make_unique<tcp::acceptor>(ex, local_.protocol(), fd_);
  fd_ = -1;
  return acc;
}

Worker::Worker(std::shared_ptr<const GatewayShared> shared, asio::any_io_executor ex)
    : snapshot_(std::make_shared<const WorkerSnapshot>(WorkerSnapshot{std::move(shared)})),
      executor_(std::move(ex)),
      deadlines_(executor_),
      sweep_timer_(executor_) {
  // The gateway's metric families are the same in every snapshot: one shard for the worker's life.
  // (Braces: clang 14, which builds the fuzz targets, has no parenthesized aggregate init.)
  if (GatewayMetrics* m = this->shared().metrics.get()) metrics_.emplace(WorkerMetrics{*m, m->registry()->add_shard()});
}

Worker::~Worker() {
  if (metrics_)
    for (auto& [u, entry] : pools_) metrics_->gateway.unwatch_pool(&entry.pool->idle_published());
}

UpstreamPool& Worker::pool_for(const Upstream& u) {
  auto& slot = pools_[&u];
  if (!slot.pool) {
    slot.upstream = u.shared_from_this();
    slot.pool = std::make_unique<UpstreamPool>(u);
    if (metrics_) {
      slot.pool->set_metrics(&metrics_->gateway.upstream(u.name()));
      metrics_->gateway.watch_pool(u.name(), &slot.pool->idle_published());
    }
  }
  return *slot.pool;
}

void Worker::add_acceptor(BoundAcceptor bound) {
  auto acc = std::make_shared<Acceptor>();
  acc->listener_id = bound.listener_id();
  acc->socket = bound.adopt(executor_);
  acc->snapshot = snapshot_;
  for (std::size_t i = 0; i < shared().listeners.size(); ++i)
    if (shared().listeners[i].id == acc->listener_id) acc->listener = i;
  acceptors_.push_back(std::move(acc));
}

void Worker::start() {
  for (const auto& acc : acceptors_) asio::co_spawn(executor_, accept_loop(acc), asio::detached);
  asio::co_spawn(executor_, sweep_loop(), asio::detached);
}

asio::awaitable<void> Worker::sweep_loop() {
  while (!draining_) {
    sweep_timer_.expires_after(kSweepInterval);
    auto [ec] = co_await sweep_timer_.async_wait(use_tuple);
    if (ec || draining_) co_return;
    ++tick_;
    for (ClientSession* s = sessions_; s; s = s->next_) s->sweep_idle(tick_);
    // Buffers nobody needed for a whole interval go; when that was a lot, whole free pages go
    // back to the system too, so that memory follows the number of busy connections.
    if (buffers_.sweep() >= (1u << 20)) release_free_memory();
    if (!stale_pools_.empty()) forget_retired_pools();
  }
}

asio::awaitable<void> Worker::accept_loop(std::shared_ptr<Acceptor> acceptor) {
  tcp::acceptor& acc = *acceptor->socket;
  AcceptBackoff backoff;
  for (;;) {
    auto [ec, socket] = co_await acc.async_accept(use_tuple);
    // A connection accepted as the listener closes is served all the same: its client is
    // connected already.
    if (!ec) {
      if (backoff.active()) accept_resumed(*acceptor, backoff);
      serve(*acceptor, std::move(socket));
    }
    if (draining_ || !acc.is_open()) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of descriptors (EMFILE, ENFILE) or buffers (ENOBUFS, ENOMEM): stop accepting for a
      // growing while, serving the connections we have, rather than spin on a queue we cannot
      // take from; any other failure pauses too.
      if (!backoff.active()) accept_paused(*acceptor, ec);
      asio::steady_timer pause(executor_, backoff.next());
      co_await pause.async_wait(use_tuple);
      if (draining_ || !acc.is_open()) co_return;
    }
  }
}

void Worker::accept_paused(const Acceptor& acceptor, const asio::error_code& ec) noexcept {
  const ListenerRuntime& l = acceptor.snapshot->shared->listeners[acceptor.listener];
  if (WorkerMetrics* m = metrics(); m && l.metrics) m->accept_backoff(*l.metrics);
  const std::string address = l.bound.address().to_string() + ":" + std::to_string(l.bound.port());
  const std::string reason = ec.message();
  log(nullptr, LogLevel::warning, "accept failed, pausing new connections on this listener (retried up to every second)",
      {{"listener", address}, {"error", reason}});
}

void Worker::accept_resumed(const Acceptor& acceptor, AcceptBackoff& backoff) noexcept {
  const ListenerRuntime& l = acceptor.snapshot->shared->listeners[acceptor.listener];
  const std::string address = l.bound.address().to_string() + ":" + std::to_string(l.bound.port());
  const std::string paused = std::to_string(backoff.paused().count());
  const std::string retries = std::to_string(backoff.retries());
  log(nullptr, LogLevel::info, "accepting new connections again",
      {{"listener", address}, {"paused_ms", paused}, {"retries", retries}});
  backoff.reset();
}

void Worker::serve(Acceptor& acceptor, tcp::socket socket) {
  const ListenerRuntime& l = acceptor.snapshot->shared->listeners[acceptor.listener];
  asio::error_code ec;
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return;  // the client is gone already
  const ListenerOptions& o = l.options;
  if (o.ip_filter && !admit_connection(*o.ip_filter, peer, o.name, metrics(),
                                       acceptor.snapshot->shared->options.security_events.get())) {
    socket.close(ec);  // refused before TLS: the client sees the connection closed
    return;
  }
  // A banned client's connection closes before anything is read (before TLS).
  if (const BanList* bans = acceptor.snapshot->shared->options.bans.get(); bans && bans->any() && bans->banned(peer.address())) {
    bans->count_hit(true);
    socket.close(ec);
    return;
  }
  const auto admit = l.connections->admit(peer.address(), o.max_connections, o.max_connections_per_client);
  if (admit != ListenerConnections::Admit::ok) return refuse(l, socket, peer, admit);
  ListenerSlot slot(l.connections, peer.address(), o.max_connections_per_client != 0);
  start_http1_session(*this, acceptor.snapshot, acceptor.listener, std::move(socket), peer, std::move(slot));
}

void Worker::refuse(const ListenerRuntime& l, tcp::socket& socket, const tcp::endpoint& peer,
                    ListenerConnections::Admit why) noexcept {
  // Closed before anything is read or any TLS work is done: the cheapest answer to a flood.
  asio::error_code ec;
  socket.close(ec);
  const bool per_client = why == ListenerConnections::Admit::client_full;
  if (WorkerMetrics* m = metrics(); m && l.metrics) m->connection_refused(*l.metrics, per_client);
  if (SecurityEvents* events = shared().options.security_events.get())
    report_connection_refused(*events, peer, per_client,
                              per_client ? l.options.max_connections_per_client : l.options.max_connections,
                              l.options.name);
}

void Worker::close_acceptor(Acceptor& acceptor) noexcept {
  tcp::acceptor& acc = *acceptor.socket;
  if (!acc.is_open()) return;
  asio::error_code ec;
  acc.non_blocking(true, ec);
  // Bounded: a flood must not hold the worker here.
  for (int i = 0; !ec && i < 4096; ++i) {
    tcp::socket socket(executor_);
    acc.accept(socket, ec);
    if (ec) break;
    try {
      serve(acceptor, std::move(socket));
    } catch (...) {
      // Out of memory: this connection is dropped, the others go on.
    }
  }
  acc.close(ec);
}

void Worker::install(std::shared_ptr<const GatewayShared> next, std::vector<BoundAcceptor> opened) {
  if (draining_) return;  // stopping: `opened` closes with this call
  WorkerSnapshotPtr previous = std::move(snapshot_);
  snapshot_ = std::make_shared<const WorkerSnapshot>(WorkerSnapshot{std::move(next)});
  std::erase_if(retired_, [](const std::weak_ptr<const WorkerSnapshot>& w) { return w.expired(); });
  retired_.push_back(previous);
  const GatewayShared& now = shared();

  std::vector<std::shared_ptr<Acceptor>> closing;
  for (auto it = acceptors_.begin(); it != acceptors_.end();) {
    Acceptor& acc = **it;
    const ListenerRuntime* kept = now.find_listener(acc.listener_id);
    if (!kept) {
      closing.push_back(std::move(*it));
      it = acceptors_.erase(it);
      continue;
    }
    acc.snapshot = snapshot_;
    acc.listener = static_cast<std::size_t>(kept - now.listeners.data());
    const ListenerRuntime* before = previous->shared->find_listener(acc.listener_id);
    if (before && before->options.backlog != kept->options.backlog) {
      asio::error_code ec;
      acc.socket->listen(kept->options.backlog, ec);  // Linux takes a new backlog on a listening socket
    }
    ++it;
  }
  if (!closing.empty()) {
    // Connections of removed listeners finish what they are doing, then close. First, so that the
    // connections accepted from the queues below are not taken for idle ones.
    for_each_session([&](ClientSession& s) {
      for (const auto& acc : closing)
        if (acc->listener_id == s.listener_id()) s.close_if_idle();
    });
    for (const auto& acc : closing) close_acceptor(*acc);
  }
  for (auto& o : opened) {
    auto acc = std::make_shared<Acceptor>();
    acc->listener_id = o.listener_id();
    acc->socket = o.adopt(executor_);
    acc->snapshot = snapshot_;
    if (const ListenerRuntime* l = now.find_listener(acc->listener_id))
      acc->listener = static_cast<std::size_t>(l - now.listeners.data());
    acceptors_.push_back(acc);
    asio::co_spawn(executor_, accept_loop(std::move(acc)), asio::detached);
  }
  // Idle connections to upstreams the reload removed go now; their pools once no request can use
  // them (forget_retired_pools).
  for (const auto& u : previous->shared->upstreams) {
    if (named(now, u.get())) continue;
    stale_pools_.push_back(u.get());
    if (const auto it = pools_.find(u.get()); it != pools_.end()) it->second.pool->clear();
  }
}

bool Worker::named(const GatewayShared& snapshot, const Upstream* upstream) noexcept {
  return std::any_of(snapshot.upstreams.begin(), snapshot.upstreams.end(),
                     [upstream](const std::shared_ptr<Upstream>& u) { return u.get() == upstream; });
}

void Worker::forget_retired_pools() {
  std::erase_if(retired_, [](const std::weak_ptr<const WorkerSnapshot>& w) { return w.expired(); });
  if (!retired_.empty()) return;
  // A later reload may have brought an upstream back: its pool is in use again.
  for (const Upstream* u : stale_pools_) {
    if (named(shared(), u)) continue;
    const auto it = pools_.find(u);
    if (it == pools_.end()) continue;
    if (metrics_) metrics_->gateway.unwatch_pool(&it->second.pool->idle_published());
    pools_.erase(it);
  }
  stale_pools_.clear();
}

void Worker::attach(ClientSession* s) noexcept {
  s->prev_ = nullptr;
  s->next_ = sessions_;
  if (sessions_) sessions_->prev_ = s;
  sessions_ = s;
  ++session_count_;
}

void Worker::detach(ClientSession* s) noexcept {
  if (s->prev_) s->prev_->next_ = s->next_;
  else if (sessions_ == s) sessions_ = s->next_;
  if (s->next_) s->next_->prev_ = s->prev_;
  s->prev_ = s->next_ = nullptr;
  --session_count_;
  if (draining_ && session_count_ == 0 && drain_timer_) drain_timer_->cancel();
}

template <class Fn>
void Worker::for_each_session(Fn fn) {
  // fn may end a session, which detaches it: collect first.
  std::vector<ClientSession*> all;
  all.reserve(session_count_);
  for (ClientSession* s = sessions_; s; s = s->next_) all.push_back(s);
  for (ClientSession* s : all) fn(*s);
}

void Worker::close_all_sessions() noexcept {
  try {
    for_each_session([](ClientSession& s) { s.force_close(); });
  } catch (...) {
    // Out of memory for the list: close them one by one from the head instead.
    for (ClientSession* s = sessions_; s; s = s->next_) s->force_close();
  }
}

void Worker::drain(std::chrono::steady_clock::time_point deadline) {
  if (draining_) return;
  draining_ = true;
  sweep_timer_.cancel();
  for_each_session([](ClientSession& s) { s.close_if_idle(); });
  // After the idle ones closed: what waits in the accept queues is served (another process on
  // the same port with SO_REUSEPORT takes the new connections, see docs/operations.md).
  for (auto& acc : acceptors_) close_acceptor(*acc);
  for (auto& [u, entry] : pools_) entry.pool->clear();
  if (session_count_ == 0) return;
  drain_timer_ = std::make_unique<asio::steady_timer>(executor_, deadline);
  drain_timer_->async_wait([this](const asio::error_code& ec) {
    if (!ec) close_all_sessions();
    for (auto& [u, entry] : pools_) entry.pool->clear();
  });
}

}  // namespace gatehouse::detail
