// Keys a shared store said are over their limit, until their retry time: while cached, a request
// is refused without a round trip. Exact, because a refusal changes nothing in the store: no
// request of that key can be admitted anywhere before its retry time.
//
// A direct-mapped table of atomic words (16-bit tag | 48-bit "until" in ticks); a collision just
// replaces the older entry, which then costs one round trip more. Another key is refused by a
// cached entry only if its 64-bit hash matches in slot and tag (1 in 65,536 of the keys that share
// the slot, and only until the entry's retry time).
#pragma once
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace gatehouse::detail {

class RateLimitDenyCache {
 public:
  explicit RateLimitDenyCache(std::size_t entries)
      : size_(std::bit_ceil(entries < 64 ? std::size_t{64} : entries)),
        words_(std::make_unique<std::atomic<std::uint64_t>[]>(size_)) {
    for (std::size_t i = 0; i < size_; ++i) words_[i].store(0, std::memory_order_relaxed);
  }

  /// Ticks until the key may be admitted again, or 0 when it is not cached as refused.
  std::int64_t retry_after(std::uint64_t hash, std::int64_t now) const noexcept {
    const std::uint64_t w = words_[hash & (size_ - 1)].load(std::memory_order_relaxed);
    if (w == 0 || (w >> kTimeBits) != tag_of(hash)) return 0;
    const std::int64_t until = decode(w, now);
    return until > now ? until - now : 0;
  }

  void refuse_until(std::uint64_t hash, std::int64_t until) noexcept {
    words_[hash & (size_ - 1)].store((tag_of(hash) << kTimeBits) | (static_cast<std::uint64_t>(until) & kTimeMask),
                                     std::memory_order_relaxed);
  }

 private:
  static constexpr int kTimeBits = 48;
  static constexpr std::uint64_t kTimeMask = (std::uint64_t{1} << kTimeBits) - 1;
  static std::uint64_t tag_of(std::uint64_t hash) noexcept {
    const std::uint64_t t = hash >> kTimeBits;
    return t == 0 ? 1 : t;
  }
  static std::int64_t decode(std::uint64_t w, std::int64_t now) noexcept {
    const std::uint64_t delta = (w - static_cast<std::uint64_t>(now)) & kTimeMask;
    const std::int64_t half = std::int64_t{1} << (kTimeBits - 1);
    const auto d = static_cast<std::int64_t>(delta);
    return now + (d >= half ? d - 2 * half : d);
  }

  std::size_t size_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> words_;
};

}  // namespace gatehouse::detail
