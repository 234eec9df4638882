// An upstream's circuit breakers: counts of what it holds (connections, pending requests, requests
// in flight, retries) shared by all workers, checked against its limits, and its retry budget.
//
// Why one set of shared atomics rather than per-worker counts: a limit is only a limit if it holds
// across workers. Per-worker shares (limit / N) refuse requests on a busy worker while others sit
// idle; summing per-worker counts on every check costs N loads. Here a request costs two relaxed
// read-modify-writes (in at the start, out at the end) on the upstream's own cache line, which no
// other upstream shares; connection and pending counts move only when a connection is opened.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>

#include "gatehouse/circuit_breaker.hpp"
#include "gatehouse/retry_policy.hpp"

namespace gatehouse::detail {

/// Retries a budget lets run at once with `requests_in_flight` requests:
/// max(min_concurrency, floor(percent% of requests_in_flight)).
std::uint64_t retry_budget_allowance(const RetryBudget& budget, std::uint64_t requests_in_flight) noexcept;

class CircuitBreaker {
 public:
  explicit CircuitBreaker(const CircuitBreakerLimits& limits) noexcept : limits_(limits) {}
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  /// Takes one unit under `limit`, or returns false when it is reached (counting a trip if
  /// `count_trip`; a request that will wait for room counts its trip only if it is refused).
  bool try_acquire(BreakerLimit limit, bool count_trip = true) noexcept;
  void count_trip(BreakerLimit limit) noexcept;
  void release(BreakerLimit limit) noexcept;

  enum class RetryVerdict : unsigned char { admitted, max_retries, budget_exhausted };
  /// A retry starts: under the budget when there is one, else under max_retries. Refusals are
  /// counted (a max_retries trip, or retry_budget_exhausted).
  RetryVerdict try_acquire_retry(const std::optional<RetryBudget>& budget) noexcept;

  /// Requests (of any worker) waiting for a connection slot at max_connections. While there are,
  /// a connection that would go idle is closed instead, so that its slot goes to them.
  void waiting_for_slot(bool starts) noexcept {
    if (starts) waiting_.fetch_add(1, std::memory_order_relaxed);
    else waiting_.fetch_sub(1, std::memory_order_relaxed);
  }
  bool slot_wanted() const noexcept { return waiting_.load(std::memory_order_relaxed) > 0; }

  /// True at most once per second (for all threads): whether this trip gets a log line.
  bool take_log_turn(std::chrono::steady_clock::time_point now) noexcept;

  const CircuitBreakerLimits& limits() const noexcept { return limits_; }
  CircuitBreakerState state() const noexcept;

 private:
  std::uint64_t limit_of(BreakerLimit l) const noexcept;
  static std::size_t index(BreakerLimit l) noexcept { return static_cast<std::size_t>(l); }

  // What every request touches, alone on its cache line.
  alignas(64) std::atomic<std::uint64_t> in_use_[kBreakerLimitCount] = {};
  std::atomic<std::uint32_t> waiting_{0};
  // Touched only when something is refused.
  alignas(64) std::atomic<std::uint64_t> trips_[kBreakerLimitCount] = {};
  std::atomic<std::uint64_t> budget_exhausted_{0};
  std::atomic<std::int64_t> last_log_{0};  // steady_clock ticks of the last trip logged
  CircuitBreakerLimits limits_;
};

/// One unit held under a limit (a request in flight, a pending request, a retry), given back when
/// this goes away. Empty when default-made or moved from.
class BreakerHold {
 public:
  BreakerHold() = default;
  BreakerHold(CircuitBreaker& b, BreakerLimit l) noexcept : breaker_(&b), limit_(l) {}
  BreakerHold(BreakerHold&& o) noexcept : breaker_(std::exchange(o.breaker_, nullptr)), limit_(o.limit_) {}
  BreakerHold& operator=(BreakerHold&& o) noexcept {
    if (this != &o) {
      reset();
      breaker_ = std::exchange(o.breaker_, nullptr);
      limit_ = o.limit_;
    }
    return *this;
  }
  ~BreakerHold() { reset(); }
  void reset() noexcept {
    if (breaker_) std::exchange(breaker_, nullptr)->release(limit_);
  }
  explicit operator bool() const noexcept { return breaker_ != nullptr; }

 private:
  CircuitBreaker* breaker_ = nullptr;
  BreakerLimit limit_ = BreakerLimit::max_requests;
};

/// Takes a unit under `limit`: a hold, or an empty one when the limit refused it.
inline BreakerHold acquire(CircuitBreaker& b, BreakerLimit limit) noexcept {
  return b.try_acquire(limit) ? BreakerHold(b, limit) : BreakerHold();
}

}  // namespace gatehouse::detail
