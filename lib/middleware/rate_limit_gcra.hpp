// GCRA (the generic cell rate algorithm): one number per key, its "theoretical arrival time"
// (TAT), decides every request. The local table and the Redis script compute the same thing.
#pragma once
#include <algorithm>
#include <cstdint>

namespace gatehouse::detail {

/// Times are ticks of kTickNs nanoseconds: coarse enough that a 48-bit tick count wraps only after
/// 2.3 years (see RateLimitTable), fine enough that a limit of 10,000/s is off by < 0.01%.
inline constexpr std::int64_t kTickNs = 256;

struct Gcra {
  std::int64_t interval = 1;   ///< ticks between two requests at the sustained rate (>= 1)
  std::int64_t tolerance = 1;  ///< burst x interval: how far ahead of now the TAT may run
};

struct GcraDecision {
  bool allowed = false;
  std::int64_t new_tat = 0;      ///< the TAT to store (allowed only)
  std::int64_t retry_after = 0;  ///< ticks until one request would be admitted (refused only)
  std::int64_t remaining = 0;    ///< requests that would be admitted right now after this one
  std::int64_t reset = 0;        ///< ticks until the whole burst is available again
};

/// The decision for a request at `now` on a key whose TAT is `tat` (a key never seen: tat = now).
constexpr GcraDecision gcra_decide(std::int64_t tat, std::int64_t now, const Gcra& g) noexcept {
  // Legitimately tat <= now + tolerance. More means the clock stepped back (or a stale value): the
  // key is treated as having just used its whole burst but one request, so it is neither held back
  // until the clock catches up nor given more than it had.
  if (tat - now > g.tolerance) tat = now + g.tolerance - g.interval;
  const std::int64_t base = std::max(tat, now);  // idle for a while: the burst is full again
  const std::int64_t new_tat = base + g.interval;
  GcraDecision d;
  if (new_tat - now > g.tolerance) {
    d.allowed = false;
    d.retry_after = new_tat - g.tolerance - now;
    d.reset = base - now;
    return d;
  }
  d.allowed = true;
  d.new_tat = new_tat;
  d.remaining = (g.tolerance - (new_tat - now)) / g.interval;
  d.reset = new_tat - now;
  return d;
}

}  // namespace gatehouse::detail
