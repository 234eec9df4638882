#include "server/worker.hpp"

#include <sys/socket.h>

#include <cerrno>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/steady_timer.hpp>

#include "server/connection.hpp"

namespace gatehouse::detail {

BufferPool::~BufferPool() {
  for (char* b : free_) delete[] b;
}

char* BufferPool::get() {
  if (free_.empty()) return new char[kSize];
  char* b = free_.back();
  free_.pop_back();
  return b;
}

void BufferPool::put(char* b) noexcept {
  // Keep a few for the next requests; the rest goes back to the allocator so that memory follows
  // the number of busy connections, not its peak.
  if (free_.size() < 32) {
    try {
      free_.push_back(b);
      return;
    } catch (...) {
    }
  }
  delete[] b;
}

namespace {
// An idle upstream connection is fit for reuse only if nothing is waiting on it: bytes would be a
// protocol error, EOF means the upstream closed it.
bool idle_connection_alive(tcp::socket& s) noexcept {
  char b;
  const ssize_t n = ::recv(s.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}
}  // namespace

std::unique_ptr<UpstreamConnection> UpstreamPool::take(const UpstreamOptions& o) {
  const auto now = std::chrono::steady_clock::now();
  while (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    if (now - c->idle_since > o.max_idle_time || now - c->created > o.max_connection_age) continue;
    // Always probed (one syscall): bytes that arrived after the last response must never be read
    // as the next one's, and a closed connection is cheaper to skip than to retry.
    if (!idle_connection_alive(c->stream.socket())) continue;
    return c;
  }
  return nullptr;
}

void UpstreamPool::put(std::unique_ptr<UpstreamConnection> c, const UpstreamOptions& o) {
  if (o.max_idle_per_worker == 0) return;
  if (idle_.size() >= o.max_idle_per_worker) idle_.erase(idle_.begin());  // the oldest goes
  c->idle_since = std::chrono::steady_clock::now();
  idle_.push_back(std::move(c));
}

Worker::Worker(std::shared_ptr<const GatewayShared> shared, asio::any_io_executor ex)
    : shared_(std::move(shared)), executor_(std::move(ex)) {}

Worker::~Worker() = default;

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
    auto conn = std::make_shared<Connection>(*this, shared_->listeners[index], std::move(socket));
    asio::co_spawn(executor_, conn->run(), asio::detached);
  }
}

void Worker::detach(Connection* c) noexcept {
  connections_.erase(c);
  if (draining_ && connections_.empty() && drain_timer_) drain_timer_->cancel();
}

void Worker::close_all_connections() noexcept {
  // force_close may end a connection, which detaches it: iterate over a copy.
  std::vector<Connection*> all(connections_.begin(), connections_.end());
  for (Connection* c : all) c->force_close();
}

void Worker::drain(std::chrono::steady_clock::time_point deadline) {
  if (draining_) return;
  draining_ = true;
  for (auto& acc : acceptors_) {
    asio::error_code ec;
    if (acc) acc->close(ec);
  }
  std::vector<Connection*> all(connections_.begin(), connections_.end());
  for (Connection* c : all) c->close_if_idle();
  for (auto& [u, pool] : pools_) pool.clear();
  if (connections_.empty()) return;
  drain_timer_ = std::make_unique<asio::steady_timer>(executor_, deadline);
  drain_timer_->async_wait([this](const asio::error_code& ec) {
    if (!ec) close_all_connections();
    for (auto& [u, pool] : pools_) pool.clear();
  });
}

}  // namespace gatehouse::detail
