// The configurable retry policy: conditions, attempts and safe methods (see RetryOptions).
#include <stdexcept>
#include <string>

#include "gatehouse/retry_policy.hpp"

namespace gatehouse {

StandardRetryPolicy::StandardRetryPolicy(RetryOptions options) : options_(std::move(options)) {
  if (options_.attempts == 0) throw std::invalid_argument("retry attempts must be at least 1");
  for (unsigned s : options_.on_status) {
    if (s < 400 || s > 599) throw std::invalid_argument("retry status " + std::to_string(s) + " is not in 400..599");
    statuses_.set(s - 400);
  }
  for (const auto& m : options_.methods) any_method_ |= m == "*";
  if (options_.budget && (options_.budget->percent < 0 || options_.budget->percent > 100))
    throw std::invalid_argument("retry budget percent must be in 0..100");
}

bool StandardRetryPolicy::retries_status(unsigned status) const noexcept {
  return status >= 400 && status <= 599 && statuses_.test(status - 400);
}

bool StandardRetryPolicy::repeatable(const Exchange& ex) const noexcept {
  if (any_method_) return true;
  const std::string_view method = ex.request().method();
  for (const auto& m : options_.methods)
    if (m == method) return true;
  return false;
}

bool StandardRetryPolicy::should_retry(const RetryRequest& r) const {
  if (r.attempt + 1 >= options_.attempts || r.body_consumed) return false;
  switch (r.failure) {
    case AttemptFailure::connect_failed:
    case AttemptFailure::connect_timeout:
      // Nothing reached the service: safe for any method.
      return options_.on_connect_failure;
    case AttemptFailure::send_failed:
    case AttemptFailure::reset:
      if (!options_.on_reset) return false;
      break;
    case AttemptFailure::timeout:
      if (!options_.on_timeout) return false;
      break;
    case AttemptFailure::status:
      if (!retries_status(r.status)) return false;
      break;
  }
  // The service may have acted on the request: only a method that may be repeated.
  return !r.request_sent || repeatable(r.exchange);
}

RetrySettings StandardRetryPolicy::settings() const {
  return RetrySettings{options_.per_try_timeout, options_.backoff, options_.budget, options_.replay_body_bytes};
}

}  // namespace gatehouse
