#include "gatehouse/retry_policy.hpp"

namespace gatehouse {

std::string_view to_string(AttemptFailure f) noexcept {
  switch (f) {
    case AttemptFailure::connect_failed: return "connect_failed";
    case AttemptFailure::connect_timeout: return "connect_timeout";
    case AttemptFailure::send_failed: return "send_failed";
    case AttemptFailure::reset: return "reset";
    case AttemptFailure::timeout: return "timeout";
  }
  return "unknown";
}

bool ConnectRetryPolicy::should_retry(const RetryRequest& r) const {
  const bool connect_failure =
      r.failure == AttemptFailure::connect_failed || r.failure == AttemptFailure::connect_timeout;
  return connect_failure && !r.request_sent && r.attempt < connect_retries_ && r.untried_endpoints > 0;
}

}  // namespace gatehouse
