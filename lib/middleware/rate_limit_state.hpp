// What a RateLimiter keeps between requests: per limit its GCRA parameters, its table, the
// precomputed header items, and a small cap on how often it logs.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gatehouse/middleware/rate_limit.hpp"
#include "middleware/rate_limit_deny_cache.hpp"
#include "middleware/rate_limit_gcra.hpp"
#include "middleware/rate_limit_table.hpp"

namespace gatehouse::detail {

struct RateLimitEntry {
  RateLimitEntry(const RateLimit& limit, std::size_t max_keys, std::uint64_t seed);

  const RateLimit* limit;  // in the owner's options
  Gcra gcra;
  RateLimitTable table;
  std::uint64_t seed;
  std::string policy_item;  // "\"name\";q=100;w=1" (RateLimit-Policy)
  std::string quoted_name;  // "\"name\"" (RateLimit)
  std::string parts;        // "client_address+route", for events
  std::atomic<std::int64_t> next_log_ns{0};
  std::atomic<std::uint64_t> unlogged{0};

  // Shared through Redis (rate_limit_redis.cpp); unused otherwise.
  void enable_shared(const RateLimitSharedOptions& shared);
  std::unique_ptr<RateLimitDenyCache> deny_cache;
  std::string redis_prefix;  // "<key_prefix><name>:{"
  std::int64_t interval_us = 0, tolerance_us = 0;
  std::string interval_arg, tolerance_arg;  // the script's ARGV
  std::atomic<std::int64_t> next_failure_log_ns{0};
};

/// The limit with the fewest requests left among those that admitted a request (for the fields
/// of RateLimitHeaders::all).
struct RateLimitFewest {
  const RateLimitEntry* entry = nullptr;
  std::int64_t remaining = std::numeric_limits<std::int64_t>::max();
  std::int64_t reset = 0;  // ticks
};

/// Acts on one limit's decision: counts it (`allowed_outcome` when admitted), and when refused
/// logs it, reports it and, unless the limit is in shadow mode, returns the 429 answer.
std::optional<Flow> rate_limit_verdict(Exchange& ex, const RateLimitOptions& options, const std::string& policy_header,
                                       RateLimitEntry& e, const GcraDecision& d, RateLimitFewest& fewest,
                                       std::string_view allowed_outcome = "allowed",
                                       std::string_view refused_outcome = "limited");
/// After every limit admitted the request: keeps what on_response needs for its fields.
void rate_limit_admitted(Exchange& ex, const RateLimitOptions& options, const RateLimitFewest& fewest);

/// Ticks (kTickNs) of the limiter's clock: the monotonic clock, or the given one (tests).
inline std::int64_t rate_limit_now(const Clock* clock) noexcept {
  const auto since_epoch = clock ? clock->now().time_since_epoch() : std::chrono::steady_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch).count() / kTickNs;
}

/// Whole seconds, rounded up, of a tick count (at least `floor`).
inline std::int64_t ticks_to_seconds_ceil(std::int64_t ticks, std::int64_t floor = 0) noexcept {
  constexpr std::int64_t per_second = 1'000'000'000 / kTickNs;
  const std::int64_t s = ticks <= 0 ? 0 : (ticks + per_second - 1) / per_second;
  return s < floor ? floor : s;
}

}  // namespace gatehouse::detail

namespace gatehouse {

struct RateLimiter::State {
  std::vector<std::unique_ptr<detail::RateLimitEntry>> entries;
  std::string policy_header;  // every limit's item, joined with ", "
};

}  // namespace gatehouse
