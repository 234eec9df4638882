// Connection slots: every open upstream connection holds one unit of its upstream's
// max_connections for its whole life. At the limit, a request that needs a new connection waits
// (on its worker's timers) for a slot; a connection closed or pooled on the same worker wakes the
// first waiter, and waiters look again every few milliseconds for slots freed by other workers.
#pragma once
#include <utility>

#include <asio/steady_timer.hpp>

#include "proxy/circuit_breaker.hpp"

namespace gatehouse::detail {

/// One worker's requests waiting for a connection to one upstream, oldest first. Worker thread only.
class ConnectionWaiters {
 public:
  /// Lives in the waiting request's frame; leaves the list when it goes away.
  struct Waiter {
    Waiter(ConnectionWaiters& l, asio::steady_timer& t) noexcept : list(&l), timer(&t) {}
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;
    ~Waiter() { list->remove(*this); }
    ConnectionWaiters* list;
    asio::steady_timer* timer;
    Waiter* prev = nullptr;
    Waiter* next = nullptr;
    bool linked = false;
  };
  ConnectionWaiters() = default;
  ConnectionWaiters(const ConnectionWaiters&) = delete;
  ConnectionWaiters& operator=(const ConnectionWaiters&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }
  void add(Waiter& w) noexcept;
  void remove(Waiter& w) noexcept;
  /// Wakes the oldest waiter (which then looks for a connection or a slot), if any.
  void wake_one() noexcept;

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

/// A unit of max_connections held by one connection. Giving it back (when the connection goes
/// away) wakes a waiter of the same worker. Empty when default-made or moved from.
class ConnectionSlot {
 public:
  ConnectionSlot() = default;
  ConnectionSlot(CircuitBreaker& b, ConnectionWaiters& w) noexcept : breaker_(&b), waiters_(&w) {}
  ConnectionSlot(ConnectionSlot&& o) noexcept
      : breaker_(std::exchange(o.breaker_, nullptr)), waiters_(std::exchange(o.waiters_, nullptr)) {}
  ConnectionSlot& operator=(ConnectionSlot&& o) noexcept {
    if (this != &o) {
      reset();
      breaker_ = std::exchange(o.breaker_, nullptr);
      waiters_ = std::exchange(o.waiters_, nullptr);
    }
    return *this;
  }
  ~ConnectionSlot() { reset(); }
  void reset() noexcept {
    if (!breaker_) return;
    std::exchange(breaker_, nullptr)->release(BreakerLimit::max_connections);
    std::exchange(waiters_, nullptr)->wake_one();
  }
  explicit operator bool() const noexcept { return breaker_ != nullptr; }

 private:
  CircuitBreaker* breaker_ = nullptr;
  ConnectionWaiters* waiters_ = nullptr;
};

}  // namespace gatehouse::detail
