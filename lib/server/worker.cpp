#include "server/worker.hpp"

#include <sys/socket.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/steady_timer.hpp>

#include "http1/session.hpp"

namespace gatehouse::detail {
namespace {
void release_free_memory() noexcept {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}
}  // namespace

Worker::Worker(std::shared_ptr<const GatewayShared> shared, asio::any_io_executor ex)
    : shared_(std::move(shared)), executor_(std::move(ex)), sweep_timer_(executor_) {
  if (GatewayMetrics* m = shared_->metrics.get()) metrics_.emplace(*m, m->registry()->add_shard());
}

Worker::~Worker() {
  if (metrics_)
    for (auto& [u, pool] : pools_) metrics_->gateway.unwatch_pool(&pool->idle_published());
}

UpstreamPool& Worker::pool_for(const Upstream& u) {
  auto& slot = pools_[&u];
  if (!slot) {
    slot = std::make_unique<UpstreamPool>(u);
    if (metrics_) {
      slot->set_metrics(&metrics_->gateway.upstream(u.name()));
      metrics_->gateway.watch_pool(u.name(), &slot->idle_published());
    }
  }
  return *slot;
}

void Worker::add_acceptor(std::size_t index, const tcp::endpoint& ep) {
  if (acceptors_.size() <= index) acceptors_.resize(index + 1);
  auto acc = std::make_unique<tcp::acceptor>(executor_);
  acc->open(ep.protocol());
  acc->set_option(tcp::acceptor::reuse_address(true));
  // Every worker listens on the same port; the kernel spreads connections across them.
  acc->set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
  if (ep.address().is_v6()) acc->set_option(asio::ip::v6_only(true));
  acc->bind(ep);
  acc->listen(shared_->listeners[index].options.backlog);
  acceptors_[index] = std::move(acc);
}

tcp::endpoint Worker::acceptor_endpoint(std::size_t index) const { return acceptors_.at(index)->local_endpoint(); }

void Worker::start() {
  for (std::size_t i = 0; i < acceptors_.size(); ++i)
    if (acceptors_[i]) asio::co_spawn(executor_, accept_loop(i), asio::detached);
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
  }
}

asio::awaitable<void> Worker::accept_loop(std::size_t index) {
  tcp::acceptor& acc = *acceptors_[index];
  for (;;) {
    auto [ec, socket] = co_await acc.async_accept(use_tuple);
    if (draining_ || !acc.is_open()) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of descriptors or memory: pause rather than spin, then accept again.
      asio::steady_timer pause(executor_, std::chrono::milliseconds(50));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    start_http1_session(*this, shared_->listeners[index], std::move(socket));
  }
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
  for (auto& acc : acceptors_) {
    asio::error_code ec;
    if (acc) acc->close(ec);
  }
  for_each_session([](ClientSession& s) { s.close_if_idle(); });
  for (auto& [u, pool] : pools_) pool->clear();
  if (session_count_ == 0) return;
  drain_timer_ = std::make_unique<asio::steady_timer>(executor_, deadline);
  drain_timer_->async_wait([this](const asio::error_code& ec) {
    if (!ec) close_all_sessions();
    for (auto& [u, pool] : pools_) pool->clear();
  });
}

}  // namespace gatehouse::detail
