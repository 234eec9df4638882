// The local limiter's memory: a fixed table of GCRA states shared by every worker thread, updated
// with compare-and-swap (no lock; a limit means the same with 1 or N workers).
//
// Layout: buckets of 8 slots (one cache line); a key's 64-bit hash picks the bucket, and its top
// 16 bits are the tag stored in the slot beside the key's TAT (48 bits of ticks, read relative to
// now, so the wrap after 2.3 years does no harm). One slot is one atomic 64-bit word: a decision
// reads the bucket and, when it admits, swaps in the new TAT. A refusal writes nothing.
//
// Memory is bounded: a new key takes an empty slot, else a slot whose TAT has passed (its key is
// idle with a full burst, so forgetting it loses nothing), else the slot whose TAT is nearest
// (the key closest to full again): that key gets a full burst early. That is the fail-open
// direction for the evicted key, chosen so that a flood of new keys cannot lock out keys that
// are already known; the count of such evictions is reported.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "middleware/rate_limit_gcra.hpp"

namespace gatehouse::detail {

class RateLimitTable {
 public:
  static constexpr std::size_t kWays = 8;

  /// Room for at least `max_keys` keys (rounded up to a power of two of buckets).
  explicit RateLimitTable(std::size_t max_keys);

  struct Result {
    GcraDecision decision;
    bool evicted_live = false;  ///< a key still inside its burst window was forgotten for this one
  };
  /// Decides a request of the key with hash `hash` at `now` (ticks) and records it when admitted.
  Result decide(std::uint64_t hash, std::int64_t now, const Gcra& g) noexcept;

  std::size_t slots() const noexcept { return (mask_ + 1) * kWays; }

 private:
  struct alignas(64) Bucket {
    std::atomic<std::uint64_t> slot[kWays];
  };
  std::unique_ptr<Bucket[]> buckets_;
  std::uint64_t mask_ = 0;
};

}  // namespace gatehouse::detail
