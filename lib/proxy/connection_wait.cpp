#include "proxy/connection_wait.hpp"

#include <algorithm>

namespace gatehouse::detail {
namespace {
// How often a waiter looks for slots freed on other workers (which do not wake it).
constexpr std::chrono::milliseconds kRecheck{10};
}  // namespace

asio::awaitable<ConnectionWait> wait_for_connection(UpstreamPool& pool, CircuitBreaker& breaker,
                                                    const tcp::endpoint& endpoint, bool pooled_ok,
                                                    std::chrono::steady_clock::time_point deadline,
                                                    asio::any_io_executor ex) {
  breaker.waiting_for_slot(true);
  struct Unwait {
    CircuitBreaker& b;
    ~Unwait() { b.waiting_for_slot(false); }
  } unwait{breaker};
  asio::steady_timer timer(ex);
  ConnectionWaiters::Waiter waiter(pool.waiters(), timer);
  ConnectionWait out;
  for (;;) {
    if (pooled_ok && (out.pooled = pool.take(endpoint))) co_return out;
    if (breaker.try_acquire(BreakerLimit::max_connections, false)) {
      out.slot = ConnectionSlot(breaker, pool.waiters());
      co_return out;
    }
    // An idle connection of ours to another endpoint holds a slot this request can use.
    if (pool.shed_one_idle()) continue;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    pool.waiters().add(waiter);
    timer.expires_at(std::min(deadline, now + kRecheck));
    co_await timer.async_wait(use_tuple);
    pool.waiters().remove(waiter);
  }
  breaker.count_trip(BreakerLimit::max_connections);
  co_return out;
}

}  // namespace gatehouse::detail
