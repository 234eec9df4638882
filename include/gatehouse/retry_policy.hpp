// Retry policy: whether a failed attempt at an upstream is tried again (on another endpoint where
// there is one).
#pragma once
#include <bitset>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gatehouse/exchange.hpp"

namespace gatehouse {

/// Why an attempt failed before a response head arrived.
enum class AttemptFailure : unsigned char {
  connect_failed,   ///< the connection was refused or reset while connecting (or TLS failed)
  connect_timeout,  ///< connecting took longer than connect_timeout
  send_failed,      ///< the upstream did not take the request
  reset,            ///< the upstream closed the connection before any response byte
  timeout,          ///< no response head within try_timeout (or the policy's per_try_timeout)
  status,           ///< a response head whose status the policy retries (RetryPolicy::retries_status)
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
  /// failure == status: the status of the response (which is discarded if the request is retried).
  unsigned status = 0;
};

/// Exponential backoff between attempts, with full jitter: the wait before retry n (1 for the
/// first) is uniform in [0, min(max, base * 2^(n-1))], so that clients failing together do not
/// come back together. Waits run on the worker's timers, never in a sleeping thread.
struct RetryBackoff {
  std::chrono::milliseconds base{0};
  std::chrono::milliseconds max{0};
};

/// The wait before retry `retry` (1 for the first); `random01` is uniform in [0, 1).
std::chrono::milliseconds backoff_delay(const RetryBackoff& b, unsigned retry, double random01) noexcept;

/// Retries in progress for an upstream stay at most max(min_concurrency, percent% of its requests
/// in flight), over all workers: when every endpoint fails, retries add at most that share of load
/// instead of multiplying it (Envoy's retry budget).
struct RetryBudget {
  double percent = 20.0;
  unsigned min_concurrency = 3;
};

/// How a policy's retries are made (whether is RetryPolicy::should_retry).
struct RetrySettings {
  /// Time allowed for one attempt, until the response head; 0: the upstream's try_timeout. The
  /// upstream's total_timeout still bounds all attempts and backoffs together.
  std::chrono::milliseconds per_try_timeout{0};
  RetryBackoff backoff{};
  /// When set, replaces the upstream's max_retries limit (CircuitBreakerLimits).
  std::optional<RetryBudget> budget{};
  /// Request bodies up to this many bytes are kept while they are sent, so that the request can
  /// be sent again. 0: a request whose body was sent is never retried.
  std::size_t replay_body_bytes = 0;
};

/// Decides whether to try again. Shared by all workers: its functions are const.
/// A request whose body was already taken from the client is never retried (unless the policy
/// keeps it for replay: RetrySettings::replay_body_bytes), and a pooled keep-alive connection
/// found closed before any response byte is always replaced once (the request never reached a
/// service): neither needs a policy. A retry also needs room in the upstream's max_retries limit
/// or retry budget, and time left before its total_timeout.
class RetryPolicy {
 public:
  virtual ~RetryPolicy() = default;
  virtual bool should_retry(const RetryRequest& r) const = 0;
  /// Whether a response with this status is a failed attempt that should_retry() may retry
  /// (with failure == AttemptFailure::status). Asked once per response head. Default: none.
  virtual bool retries_status(unsigned status) const noexcept;
  /// Whether this request may be sent again once the upstream may have seen it; only then is its
  /// body kept for replay (RetrySettings::replay_body_bytes). Default: true.
  virtual bool repeatable(const Exchange& ex) const noexcept;
  /// Read once, when a route starts using the policy. Default: no backoff, no budget, no replay.
  virtual RetrySettings settings() const;
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

/// What StandardRetryPolicy retries, and how.
struct RetryOptions {
  /// Attempts in all, the first included (2: at most one retry).
  unsigned attempts = 2;
  /// Conditions. A connect failure (refused, reset or TLS failure while connecting, connect
  /// timeout) never reached the service, so it is retried whatever the method.
  bool on_connect_failure = true;
  bool on_reset = true;     ///< the upstream closed the connection before any response byte
  bool on_timeout = false;  ///< no response head within the per-try timeout
  /// Response statuses retried (400..599); the failed response is discarded.
  std::vector<unsigned> on_status = {502, 503, 504};
  /// Methods that may be sent again once the upstream may have seen the request (any condition
  /// but a connect failure). The default: RFC 9110's idempotent methods. {"*"}: every method.
  std::vector<std::string> methods = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
  std::chrono::milliseconds per_try_timeout{0};  ///< 0: the upstream's try_timeout
  RetryBackoff backoff{std::chrono::milliseconds(25), std::chrono::milliseconds(250)};
  std::optional<RetryBudget> budget = RetryBudget{};  ///< nullopt: the max_retries limit applies
  /// Request bodies up to this size are kept for replay (0: a sent body is never sent again).
  std::size_t replay_body_bytes = 64 * 1024;
};

/// The configurable policy (the file's "retry" object): chosen conditions, safe methods only once
/// the request may have been seen, a different endpoint on each try where the balancer has one.
class StandardRetryPolicy final : public RetryPolicy {
 public:
  /// Throws std::invalid_argument for attempts == 0 or a status outside 400..599.
  explicit StandardRetryPolicy(RetryOptions options);
  bool should_retry(const RetryRequest& r) const override;
  bool retries_status(unsigned status) const noexcept override;
  /// The request's method is one of RetryOptions::methods.
  bool repeatable(const Exchange& ex) const noexcept override;
  RetrySettings settings() const override;
  const RetryOptions& options() const noexcept { return options_; }

 private:
  RetryOptions options_;
  std::bitset<200> statuses_;  // 400..599
  bool any_method_ = false;
};

}  // namespace gatehouse
