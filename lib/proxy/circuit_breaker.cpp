#include "proxy/circuit_breaker.hpp"

#include <algorithm>
#include <cmath>

namespace gatehouse {

std::string_view to_string(BreakerLimit limit) noexcept {
  switch (limit) {
    case BreakerLimit::max_connections: return "max_connections";
    case BreakerLimit::max_pending_requests: return "max_pending_requests";
    case BreakerLimit::max_requests: return "max_requests";
    case BreakerLimit::max_retries: return "max_retries";
  }
  return "unknown";
}

}  // namespace gatehouse

namespace gatehouse::detail {

std::uint64_t retry_budget_allowance(const RetryBudget& budget, std::uint64_t requests_in_flight) noexcept {
  const double share = std::floor(static_cast<double>(requests_in_flight) * std::clamp(budget.percent, 0.0, 100.0) / 100.0);
  return std::max<std::uint64_t>(budget.min_concurrency, static_cast<std::uint64_t>(share));
}

std::uint64_t CircuitBreaker::limit_of(BreakerLimit l) const noexcept {
  switch (l) {
    case BreakerLimit::max_connections: return limits_.max_connections;
    case BreakerLimit::max_pending_requests: return limits_.max_pending_requests;
    case BreakerLimit::max_requests: return limits_.max_requests;
    case BreakerLimit::max_retries: return limits_.max_retries;
  }
  return 0;
}

bool CircuitBreaker::try_acquire(BreakerLimit l, bool count_trip) noexcept {
  auto& n = in_use_[index(l)];
  // Count first, then compare what was there: concurrent takers can never all pass the limit
  // together, as they could with a load followed by an increment.
  if (n.fetch_add(1, std::memory_order_relaxed) < limit_of(l)) return true;
  n.fetch_sub(1, std::memory_order_relaxed);
  if (count_trip) this->count_trip(l);
  return false;
}

void CircuitBreaker::count_trip(BreakerLimit l) noexcept { trips_[index(l)].fetch_add(1, std::memory_order_relaxed); }

void CircuitBreaker::release(BreakerLimit l) noexcept { in_use_[index(l)].fetch_sub(1, std::memory_order_relaxed); }

CircuitBreaker::RetryVerdict CircuitBreaker::try_acquire_retry(const std::optional<RetryBudget>& budget) noexcept {
  if (!budget) return try_acquire(BreakerLimit::max_retries) ? RetryVerdict::admitted : RetryVerdict::max_retries;
  auto& retries = in_use_[index(BreakerLimit::max_retries)];
  const std::uint64_t before = retries.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t requests = in_use_[index(BreakerLimit::max_requests)].load(std::memory_order_relaxed);
  if (before < retry_budget_allowance(*budget, requests)) return RetryVerdict::admitted;
  retries.fetch_sub(1, std::memory_order_relaxed);
  budget_exhausted_.fetch_add(1, std::memory_order_relaxed);
  return RetryVerdict::budget_exhausted;
}

bool CircuitBreaker::take_log_turn(std::chrono::steady_clock::time_point now) noexcept {
  const std::int64_t t = now.time_since_epoch().count();
  const std::int64_t second = std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::seconds(1)).count();
  std::int64_t last = last_log_.load(std::memory_order_relaxed);
  if (last != 0 && t - last < second) return false;
  return last_log_.compare_exchange_strong(last, t, std::memory_order_relaxed);
}

CircuitBreakerState CircuitBreaker::state() const noexcept {
  CircuitBreakerState s;
  s.limits = limits_;
  s.connections = in_use_[index(BreakerLimit::max_connections)].load(std::memory_order_relaxed);
  s.pending_requests = in_use_[index(BreakerLimit::max_pending_requests)].load(std::memory_order_relaxed);
  s.requests = in_use_[index(BreakerLimit::max_requests)].load(std::memory_order_relaxed);
  s.retries = in_use_[index(BreakerLimit::max_retries)].load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < kBreakerLimitCount; ++i) s.trips[i] = trips_[i].load(std::memory_order_relaxed);
  s.retry_budget_exhausted = budget_exhausted_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace gatehouse::detail
