// The shared limiter: the same GCRA as the local table, run in Redis by a Lua script (EVALSHA, one
// round trip per limit decision, Redis's own clock so that instances with skewed clocks agree).
#include <openssl/evp.h>

#include <array>
#include <span>
#include <string>
#include <string_view>

#include <asio/use_awaitable.hpp>

#include "gatehouse/middleware/rate_limit.hpp"
#include "gatehouse/redis.hpp"
#include "gatehouse/security_event.hpp"
#include "middleware/rate_limit_deny_cache.hpp"
#include "middleware/rate_limit_key.hpp"
#include "middleware/rate_limit_state.hpp"
#include "net/stream.hpp"
#include "observe/gateway_metrics.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

namespace gatehouse {
namespace detail {
namespace {

// KEYS[1]: the key's TAT (microseconds of Redis's clock). ARGV: interval and tolerance (µs).
// Returns {1, remaining, reset_us} when admitted, {0, retry_after_us, reset_us} when refused. The
// key expires when its burst is full again: idle keys cost Redis nothing. TIME in a script is
// allowed since Redis 5 (scripts replicate their effects, not the script).
constexpr std::string_view kGcraScript = R"lua(
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat - now > tolerance then tat = now + tolerance end
local base = math.max(tat, now)
local new_tat = base + interval
if new_tat - now > tolerance then
  return {0, new_tat - tolerance - now, base - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((tolerance - (new_tat - now)) / interval), new_tat - now}
)lua";

const RedisScript& gcra_script() {
  static const RedisScript script{std::string(kGcraScript)};
  return script;
}

std::int64_t us_to_ticks(std::int64_t us) noexcept { return us * 1000 / kTickNs; }

// "<prefix><limit>:{<128 bits of SHA-256 of the key, hex>}": the same on every instance, fixed
// length whatever the key, and the braces make it a Redis Cluster hash tag.
std::string redis_key(const RateLimitEntry& e, std::string_view key) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int size = 0;
  EVP_Digest(key.data(), key.size(), md.data(), &size, EVP_sha256(), nullptr);
  std::string out = e.redis_prefix;
  out += to_hex(md.data(), 16);
  out += '}';
  return out;
}

void log_store_failure(RateLimitEntry& e, std::error_code ec, RateLimitFailureMode mode) {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::int64_t next = e.next_failure_log_ns.load(std::memory_order_relaxed);
  if (now < next ||
      !e.next_failure_log_ns.compare_exchange_strong(next, now + 1'000'000'000, std::memory_order_relaxed)) {
    return;
  }
  const std::string error = ec.message();
  const std::string_view action = mode == RateLimitFailureMode::open     ? "let through"
                                  : mode == RateLimitFailureMode::closed ? "refused with 503"
                                                                         : "decided by the local limiter";
  log(nullptr, LogLevel::warning, "rate_limit: shared store unavailable",
      {{"limit", e.limit->name}, {"error", error}, {"requests", action}});
}

Flow store_unavailable_answer(Exchange& ex, const RateLimitEntry& e) {
  if (ex.security_events()) {
    SecurityEvent ev;
    ev.kind = SecurityEventKind::rate_limited;
    ev.reason = "rate-limit store unavailable (fail closed)";
    ev.http_status = 503;
    ev.rule_id = e.limit->name;
    ev.label("mode", "fail_closed");
    ex.report(std::move(ev));
  }
  Flow f = Flow::respond(Status::service_unavailable);
  f.response().headers().set("retry-after", "1");
  return f;
}

}  // namespace

void RateLimitEntry::enable_shared(const RateLimitSharedOptions& shared) {
  deny_cache = std::make_unique<RateLimitDenyCache>(shared.deny_cache_keys);
  redis_prefix = shared.key_prefix + limit->name + ":{";
  const std::int64_t period_us = std::chrono::duration_cast<std::chrono::microseconds>(limit->period).count();
  const auto requests = static_cast<std::int64_t>(limit->requests);
  const std::int64_t burst = limit->burst == 0 ? requests : static_cast<std::int64_t>(limit->burst);
  interval_us = std::max<std::int64_t>(1, (period_us + requests / 2) / requests);
  tolerance_us = interval_us * burst;
  interval_arg = std::to_string(interval_us);
  tolerance_arg = std::to_string(tolerance_us);
}

}  // namespace detail

Flow RateLimiter::on_request_shared(Exchange& ex) const {
  // Keys already known to be over their limit are refused here, without a round trip.
  thread_local std::string key;
  const std::int64_t now = detail::rate_limit_now(options_.clock);
  detail::RateLimitFewest fewest;
  for (const auto& entry : state_->entries) {
    detail::RateLimitEntry& e = *entry;
    if (!detail::build_rate_limit_key(e.limit->key, ex, options_.ipv4_prefix, options_.ipv6_prefix, key)) continue;
    const std::int64_t retry = e.deny_cache->retry_after(detail::rate_limit_key_hash(key, e.seed), now);
    if (retry == 0 || e.limit->shadow) continue;
    detail::GcraDecision refused;
    refused.retry_after = retry;
    if (auto answer = detail::rate_limit_verdict(ex, options_, state_->policy_header, e, refused, fewest, "allowed",
                                                 "cached_limited")) {
      return std::move(*answer);
    }
  }
  return Flow::later(decide_shared(ex));
}

asio::awaitable<Flow> RateLimiter::decide_shared(Exchange& ex) const {
  const RateLimitSharedOptions& shared = options_.shared;
  detail::RateLimitFewest fewest;
  std::string key;
  for (const auto& entry : state_->entries) {
    detail::RateLimitEntry& e = *entry;
    if (!detail::build_rate_limit_key(e.limit->key, ex, options_.ipv4_prefix, options_.ipv6_prefix, key)) {
      detail::count_rate_limit(ex, e.limit->name, "no_key");
      continue;
    }
    const std::uint64_t hash = detail::rate_limit_key_hash(key, e.seed);
    const std::string rkey = detail::redis_key(e, key);
    // Named arrays, not braced lists, in the co_await (GCC 12 coroutine bug with initializer lists).
    std::array<std::string_view, 1> keys;
    keys[0] = rkey;
    std::array<std::string_view, 2> args;
    args[0] = e.interval_arg;
    args[1] = e.tolerance_arg;
    const std::span<const std::string_view> key_span(keys);
    const std::span<const std::string_view> arg_span(args);
    auto [ec, reply] = co_await shared.redis->async_evalsha(detail::gcra_script(), key_span, arg_span, shared.timeout,
                                                            detail::use_tuple);
    const bool well_formed = !ec && reply.is_array() && reply.elements.size() == 3 &&
                             reply.elements[0].is_integer() && reply.elements[1].is_integer() &&
                             reply.elements[2].is_integer();
    const std::int64_t now = detail::rate_limit_now(options_.clock);
    if (!well_formed) {
      const std::error_code why = ec ? ec : std::make_error_code(std::errc::bad_message);
      detail::log_store_failure(e, why, shared.on_failure);
      if (shared.on_failure == RateLimitFailureMode::open) {
        detail::count_rate_limit(ex, e.limit->name, "failed_open");
        continue;
      }
      if (shared.on_failure == RateLimitFailureMode::closed) {
        detail::count_rate_limit(ex, e.limit->name, "failed_closed");
        co_return detail::store_unavailable_answer(ex, e);
      }
      const detail::RateLimitTable::Result r = e.table.decide(hash, now, e.gcra);
      if (auto refused = detail::rate_limit_verdict(ex, options_, state_->policy_header, e, r.decision, fewest,
                                                    "fallback_allowed", "fallback_limited")) {
        co_return std::move(*refused);
      }
      continue;
    }
    detail::GcraDecision d;
    d.allowed = reply.elements[0].integer == 1;
    if (d.allowed) {
      d.remaining = reply.elements[1].integer;
    } else {
      d.retry_after = detail::us_to_ticks(reply.elements[1].integer);
      if (!e.limit->shadow) e.deny_cache->refuse_until(hash, now + d.retry_after);
    }
    d.reset = detail::us_to_ticks(reply.elements[2].integer);
    if (auto refused = detail::rate_limit_verdict(ex, options_, state_->policy_header, e, d, fewest)) {
      co_return std::move(*refused);
    }
  }
  detail::rate_limit_admitted(ex, options_, fewest);
  co_return Flow::next();
}

}  // namespace gatehouse
