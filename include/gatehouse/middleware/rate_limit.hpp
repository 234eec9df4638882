// RateLimit: refuses requests over one or more named rate limits with 429, Retry-After and the
// IETF RateLimit-Policy / RateLimit fields. The algorithm is GCRA (docs/traffic.md says why).
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gatehouse/clock.hpp"
#include "gatehouse/middleware.hpp"

namespace gatehouse {

class RedisClient;

/// One part of a rate-limit key. A key is the combination of its parts ("per subject and route").
struct RateLimitKeyPart {
  enum class Kind : unsigned char {
    client_address,  ///< the client (after trusted-proxy resolution), IPv6 cut to a prefix
    route,           ///< the route's name
    subject,         ///< the verified token's "sub" (Authenticate must run first)
    api_key,         ///< the id of the API key that authenticated the request
    claim,           ///< a verified token claim: `name` (a claim name, or a JSON pointer "/a/b")
    header,          ///< a request header: `name`
  };
  Kind kind = Kind::client_address;
  std::string name{};

  static RateLimitKeyPart client_address() { return {Kind::client_address, {}}; }
  static RateLimitKeyPart route() { return {Kind::route, {}}; }
  static RateLimitKeyPart subject() { return {Kind::subject, {}}; }
  static RateLimitKeyPart api_key() { return {Kind::api_key, {}}; }
  static RateLimitKeyPart claim(std::string name) { return {Kind::claim, std::move(name)}; }
  static RateLimitKeyPart header(std::string name) { return {Kind::header, std::move(name)}; }
};

/// One named limit: `requests` per `period` on average, at most `burst` at once.
struct RateLimit {
  /// Names the limit in answers (RateLimit-Policy), metrics, logs and security events (rule.id):
  /// letters, digits, '_', '-', '.'; unique within a RateLimitOptions.
  std::string name{};
  std::uint64_t requests = 0;  ///< > 0
  std::chrono::seconds period{1};  ///< >= 1 s
  /// Requests admitted at once after an idle time; 0: `requests` (a whole period's worth).
  std::uint64_t burst = 0;
  /// The key: the limit counts each distinct combination separately. Empty: one counter for all.
  /// A request that lacks a part (no token, no such header) is not counted by this limit.
  std::vector<RateLimitKeyPart> key{};
  /// Count and report, but never refuse: for trying a limit on live traffic first.
  bool shadow = false;
};

/// What answers carry.
enum class RateLimitHeaders : unsigned char {
  none,    ///< only Retry-After on a 429
  denied,  ///< RateLimit-Policy and RateLimit on 429 answers
  all,     ///< RateLimit-Policy and RateLimit on every answer
};

/// What a shared limiter does when its store does not answer in time (or is down).
enum class RateLimitFailureMode : unsigned char {
  open,    ///< let the request through (counted as failed_open)
  closed,  ///< refuse it with 503 and Retry-After: 1
  local,   ///< decide with this instance's own table (each instance then allows the full limit)
};

/// One limit for all gateway instances: the state lives in Redis (gatehouse/redis.hpp), and N per
/// second means N per second in total. Each decision is one EVALSHA round trip, awaited without
/// blocking the worker; keys Redis refused are refused locally until their retry time.
struct RateLimitSharedOptions {
  std::shared_ptr<RedisClient> redis{};  ///< null: the limiter is local to this instance
  /// Redis keys are "<prefix><limit>:{<hash of the key>}" (a Redis Cluster hash tag).
  std::string key_prefix = "gatehouse:rl:";
  /// Hard deadline of one decision; past it the failure mode decides.
  std::chrono::milliseconds timeout{5};
  RateLimitFailureMode on_failure = RateLimitFailureMode::local;
  /// Entries of the local cache of refused keys, per limit (8 bytes each).
  std::size_t deny_cache_keys = 65'536;
};

struct RateLimitOptions {
  std::vector<RateLimit> limits{};  ///< at least one
  /// The client_address part keeps this many leading bits of an IPv6 address, so that one host
  /// (which usually owns a /64) cannot escape its limit by rotating addresses.
  unsigned ipv6_prefix = 64;
  unsigned ipv4_prefix = 32;
  /// Keys tracked per limit (memory: 8 bytes each, rounded up to a power of two). When full, a
  /// new key takes the place of the tracked key closest to being idle again (docs/traffic.md).
  std::size_t max_keys = 100'000;
  RateLimitHeaders headers = RateLimitHeaders::denied;
  /// Also X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (seconds), wherever the
  /// IETF fields go.
  bool x_ratelimit_headers = false;
  /// Time source; null: the monotonic clock (tests pass a testing::FakeClock).
  const Clock* clock = nullptr;
  /// Shared through Redis; by default (no client) local to this instance.
  RateLimitSharedOptions shared{};
};

/// Refuses a request with 429 when any of its limits is exceeded (the first such limit decides;
/// later limits do not count the request). Every decision is counted in
/// gatehouse_rate_limit_decisions_total{route, limit, outcome}; every refusal (and every shadow
/// one) is a `rate_limited` security event whose rule.id is the limit's name.
///
/// State is shared by all worker threads (a fixed table of atomics updated with compare-and-swap:
/// no lock, and N workers never multiply a limit), and kept across a configuration reload when
/// the middleware's definition is unchanged.
class RateLimiter final : public Middleware {
 public:
  /// Throws std::invalid_argument for a bad limit (no name, zero rate, duplicate name...).
  explicit RateLimiter(RateLimitOptions options);
  ~RateLimiter() override;
  Flow on_request(Exchange& ex) const override;
  Flow on_response(Exchange& ex) const override;

  const RateLimitOptions& options() const noexcept { return options_; }

  struct State;

 private:
  Flow on_request_shared(Exchange& ex) const;
  asio::awaitable<Flow> decide_shared(Exchange& ex) const;

  RateLimitOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace gatehouse
