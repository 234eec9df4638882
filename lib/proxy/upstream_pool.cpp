#include "proxy/upstream_pool.hpp"

#include "proxy/upstream_impl.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>

#include "proxy/upstream_impl.hpp"

namespace gatehouse::detail {
namespace {

// An idle upstream connection is fit for reuse only if nothing is waiting on it: bytes would be a
// protocol error, EOF means the upstream closed it.
bool idle_connection_alive(tcp::socket& s) noexcept {
  char b;
  const ssize_t n = ::recv(s.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

UpstreamPool::UpstreamPool(const Upstream& upstream)
    : upstream_(upstream), chooser_(UpstreamAccess::impl(upstream).health, upstream.options().load_balancer()) {}

const std::shared_ptr<const std::vector<UpstreamEndpoint>>& UpstreamPool::snapshot() {
  const std::uint64_t g = upstream_.generation();
  if (g != generation_ || !snapshot_) {
    snapshot_ = upstream_.endpoints();
    generation_ = g;
  }
  return snapshot_;
}

std::unique_ptr<UpstreamConnection> UpstreamPool::take(const tcp::endpoint& endpoint) {
  const UpstreamOptions& o = upstream_.options();
  // Ages are compared to limits of seconds: the coarse clock will do (a max_idle_time of a few
  // milliseconds is honoured to within a few milliseconds).
  const auto now = deadline_now();
  for (std::size_t i = idle_.size(); i-- > 0;) {
    if (idle_[i]->endpoint != endpoint) continue;
    auto c = std::move(idle_[i]);
    idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
    if (now - c->idle_since > o.max_idle_time || now - c->created > o.max_connection_age) continue;
    // Always probed (one syscall): bytes that arrived after the last response must never be read
    // as the next one's, and a closed connection is cheaper to skip than to retry.
    // TLS: bytes already received above the socket count as stray bytes too.
    if (c->stream.has_buffered_input() || !idle_connection_alive(c->stream.socket())) continue;
    publish_idle();
    return c;
  }
  publish_idle();
  return nullptr;
}

void UpstreamPool::put(std::unique_ptr<UpstreamConnection> c) {
  const std::size_t max = upstream_.options().max_idle_per_worker;
  if (max == 0) return;
  // Requests of other workers wait for a connection slot: give this one's back rather than idle.
  if (waiters_.empty() && UpstreamAccess::impl(upstream_).breaker->slot_wanted()) return;
  if (idle_.size() >= max) idle_.erase(idle_.begin());  // the least recently used goes
  c->idle_since = deadline_now();
  c->reused = true;
  idle_.push_back(std::move(c));
  publish_idle();
  waiters_.wake_one();  // a request of this worker waiting for a connection may take this one
}

bool UpstreamPool::shed_one_idle() noexcept {
  if (idle_.empty()) return false;
  idle_.erase(idle_.begin());
  publish_idle();
  return true;
}

}  // namespace gatehouse::detail
