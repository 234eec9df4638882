// Retry policy: whether a failed attempt at an upstream is tried again (on another endpoint where
// there is one).
#pragma once
#include <cstddef>
#include <string_view>

#include "gatehouse/exchange.hpp"

namespace gatehouse {

/// Why an attempt failed before a response head arrived.
enum class AttemptFailure : unsigned char {
  connect_failed,   ///< the connection was refused or reset while connecting (or TLS failed)
  connect_timeout,  ///< connecting took longer than connect_timeout
  send_failed,      ///< the upstream did not take the request
  reset,            ///< the upstream closed the connection before any response byte
  timeout,          ///< no response head within try_timeout
};

/// A short name for logs: "connect_failed", "connect_timeout", ...
std::string_view to_string(AttemptFailure f) noexcept;

struct RetryRequest {
  const Exchange& exchange;
  unsigned attempt = 0;  ///< the attempt that failed: 0 for the first
  AttemptFailure failure = AttemptFailure::connect_failed;
  /// True when bytes of the request reached the upstream: repeating the request may repeat its
  /// effect, so only idempotent requests should be tried again then.
  bool request_sent = false;
  /// True when the request has a body that was already streamed from the client: it cannot be
  /// sent again, whatever the policy says.
  bool body_consumed = false;
  /// Endpoints this request has not tried yet.
  std::size_t untried_endpoints = 0;
};

/// Decides whether to try again. Shared by all workers: should_retry() is const.
/// A request whose body was already taken from the client is never retried, and a pooled
/// keep-alive connection found closed before any response byte is always replaced once (the
/// request never reached a service): neither needs a policy.
class RetryPolicy {
 public:
  virtual ~RetryPolicy() = default;
  virtual bool should_retry(const RetryRequest& r) const = 0;
};

/// The default: connection failures (refused, reset, TLS, timeout) are tried again on another
/// endpoint (never the same one) up to `connect_retries` times; nothing is retried once the
/// request was sent.
class ConnectRetryPolicy final : public RetryPolicy {
 public:
  explicit ConnectRetryPolicy(unsigned connect_retries) : connect_retries_(connect_retries) {}
  bool should_retry(const RetryRequest& r) const override;

 private:
  unsigned connect_retries_;
};

}  // namespace gatehouse
