#include "middleware/rate_limit_table.hpp"

#include <algorithm>
#include <bit>
#include <limits>

namespace gatehouse::detail {
namespace {

constexpr int kTimeBits = 48;
constexpr std::uint64_t kTimeMask = (std::uint64_t{1} << kTimeBits) - 1;

std::uint64_t tag_of(std::uint64_t hash) noexcept {
  const std::uint64_t tag = hash >> kTimeBits;
  return tag == 0 ? 1 : tag;  // 0 marks an empty slot
}

std::uint64_t encode(std::uint64_t tag, std::int64_t tat) noexcept {
  return (tag << kTimeBits) | (static_cast<std::uint64_t>(tat) & kTimeMask);
}

// The stored 48 bits are the TAT modulo 2^48; the TAT is the value nearest to `now` with them
// (TATs are within ±1.1 years of now unless a key sat idle longer, see gcra_decide's clamp).
std::int64_t decode_tat(std::uint64_t word, std::int64_t now) noexcept {
  const std::uint64_t delta = (word - static_cast<std::uint64_t>(now)) & kTimeMask;
  const std::int64_t signed_delta = delta >= (std::uint64_t{1} << (kTimeBits - 1))
                                        ? static_cast<std::int64_t>(delta) - (std::int64_t{1} << kTimeBits)
                                        : static_cast<std::int64_t>(delta);
  return now + signed_delta;
}

}  // namespace

RateLimitTable::RateLimitTable(std::size_t max_keys) {
  const std::size_t buckets = std::bit_ceil(std::max<std::size_t>(1, (max_keys + kWays - 1) / kWays));
  buckets_ = std::make_unique<Bucket[]>(buckets);
  for (std::size_t b = 0; b < buckets; ++b) {
    for (auto& s : buckets_[b].slot) s.store(0, std::memory_order_relaxed);
  }
  mask_ = buckets - 1;
}

RateLimitTable::Result RateLimitTable::decide(std::uint64_t hash, std::int64_t now, const Gcra& g) noexcept {
  Bucket& bucket = buckets_[hash & mask_];
  const std::uint64_t tag = tag_of(hash);
  for (;;) {
    std::size_t victim = 0;
    std::uint64_t victim_word = 0;
    std::int64_t victim_tat = std::numeric_limits<std::int64_t>::max();
    std::size_t found = kWays;
    std::uint64_t word = 0;
    for (std::size_t i = 0; i < kWays; ++i) {
      word = bucket.slot[i].load(std::memory_order_acquire);
      if ((word >> kTimeBits) == tag) {
        found = i;
        break;
      }
      const std::int64_t tat = word == 0 ? std::numeric_limits<std::int64_t>::min() : decode_tat(word, now);
      if (tat < victim_tat) {
        victim = i;
        victim_word = word;
        victim_tat = tat;
      }
    }
    if (found < kWays) {
      Result r{gcra_decide(decode_tat(word, now), now, g), false};
      if (!r.decision.allowed) return r;
      if (bucket.slot[found].compare_exchange_weak(word, encode(tag, r.decision.new_tat), std::memory_order_acq_rel,
                                                   std::memory_order_relaxed)) {
        return r;
      }
      continue;  // another worker decided for this key (or the slot changed hands) meanwhile
    }
    // A key not tracked (or forgotten) starts with a full burst.
    Result r{gcra_decide(now, now, g), victim_word != 0 && victim_tat > now};
    if (!r.decision.allowed) return r;  // a burst below one request: nothing to record
    if (bucket.slot[victim].compare_exchange_weak(victim_word, encode(tag, r.decision.new_tat),
                                                  std::memory_order_acq_rel, std::memory_order_relaxed)) {
      return r;
    }
  }
}

}  // namespace gatehouse::detail
