#include "gatehouse/retry_policy.hpp"

#include <algorithm>
#include <cmath>

namespace gatehouse {

std::string_view to_string(AttemptFailure f) noexcept {
  switch (f) {
    case AttemptFailure::connect_failed: return "connect_failed";
    case AttemptFailure::connect_timeout: return "connect_timeout";
    case AttemptFailure::send_failed: return "send_failed";
    case AttemptFailure::reset: return "reset";
    case AttemptFailure::timeout: return "timeout";
    case AttemptFailure::status: return "status";
  }
  return "unknown";
}

bool RetryPolicy::retries_status(unsigned) const noexcept { return false; }
bool RetryPolicy::repeatable(const Exchange&) const noexcept { return true; }
RetrySettings RetryPolicy::settings() const { return {}; }

std::chrono::milliseconds backoff_delay(const RetryBackoff& b, unsigned retry, double random01) noexcept {
  if (b.base.count() <= 0 || retry == 0) return std::chrono::milliseconds(0);
  const double cap = static_cast<double>(std::max(b.max, b.base).count());
  // base * 2^(retry-1), computed in double so that a large retry number saturates at the cap
  // instead of overflowing.
  const double ceiling = std::min(cap, std::ldexp(static_cast<double>(b.base.count()), static_cast<int>(std::min(retry - 1, 62u))));
  const double r = std::clamp(random01, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::floor(r * ceiling)));
}

bool ConnectRetryPolicy::should_retry(const RetryRequest& r) const {
  const bool connect_failure =
      r.failure == AttemptFailure::connect_failed || r.failure == AttemptFailure::connect_timeout;
  return connect_failure && !r.request_sent && r.attempt < connect_retries_ && r.untried_endpoints > 0;
}

}  // namespace gatehouse
