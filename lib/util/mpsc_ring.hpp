// A bounded lock-free queue for many producers and one consumer, after Dmitry Vyukov's bounded
// MPMC queue: each slot carries a sequence number that says whose turn it is, producers claim a
// ticket with one CAS, and the single consumer owns its position outright (no CAS on that side).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

namespace gatehouse::detail {

template <class T>
class MpscRing {
  static_assert(std::is_nothrow_swappable_v<T> && std::is_nothrow_default_constructible_v<T>);

 public:
  /// Holds exactly `capacity` values (at least 2: with one slot a full ring and an empty one have
  /// the same sequence number).
  explicit MpscRing(std::size_t capacity)
      : capacity_(capacity < 2 ? 2 : capacity), slots_(std::make_unique<Slot[]>(capacity_)) {
    for (std::size_t i = 0; i < capacity_; ++i) slots_[i].seq.store(i, std::memory_order_relaxed);
  }
  MpscRing(const MpscRing&) = delete;
  MpscRing& operator=(const MpscRing&) = delete;

  /// Any thread. Swaps `value` into a free slot and returns true; `value` then holds what the
  /// consumer left in that slot (a spent value whose storage can be reused). When the ring is full
  /// returns false at once and leaves `value` alone.
  bool try_push(T& value) noexcept {
    std::uint64_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      Slot& s = slots_[pos % capacity_];
      // Acquire: pairs with the consumer's release, so its swap-out happened before we touch value.
      const std::uint64_t seq = s.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::int64_t>(seq - pos);
      if (diff == 0) {
        // The slot's seq carries the data ordering; seq_cst here (free on x86: it is a locked
        // instruction anyway) lets a consumer that announces it is going to sleep and then reads
        // claimed() rely on a Dekker-style handshake with no fence on this hot path.
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) {
          using std::swap;
          swap(s.value, value);
          s.seq.store(pos + 1, std::memory_order_release);  // publish to the consumer
          return true;
        }
        // pos now holds the current tail; retry with it.
      } else if (diff < 0) {
        return false;  // the slot still holds the value from one lap ago: full
      } else {
        pos = tail_.load(std::memory_order_relaxed);  // another producer took this ticket
      }
    }
  }

  /// Consumer thread only. Swaps the oldest value into `out` (out's old content goes into the slot
  /// for a producer to reuse). False when empty or when the producer holding the oldest ticket has
  /// not finished writing it yet.
  bool try_pop(T& out) noexcept {
    Slot& s = slots_[head_ % capacity_];
    if (s.seq.load(std::memory_order_acquire) != head_ + 1) return false;
    using std::swap;
    swap(s.value, out);
    // Release: our swap-out happens before the producer that sees this seq writes the slot.
    s.seq.store(head_ + capacity_, std::memory_order_release);
    ++head_;
    return true;
  }

  /// Consumer thread only: true when try_pop would succeed.
  bool ready() const noexcept {
    return slots_[head_ % capacity_].seq.load(std::memory_order_acquire) == head_ + 1;
  }
  /// Consumer thread only: values popped so far.
  std::uint64_t popped() const noexcept { return head_; }
  /// Any thread: tickets handed out so far. Every push that returned true holds a ticket below
  /// this; a ticket's value becomes poppable a few instructions after it is taken. Sequentially
  /// consistent with the ticket CAS (see try_push).
  std::uint64_t claimed() const noexcept { return tail_.load(std::memory_order_seq_cst); }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  // One cache line per slot so that a producer filling one slot and the consumer emptying its
  // neighbour do not bounce the same line.
  struct alignas(64) Slot {
    std::atomic<std::uint64_t> seq{0};
    T value{};
  };

  const std::size_t capacity_;
  std::unique_ptr<Slot[]> slots_;
  alignas(64) std::atomic<std::uint64_t> tail_{0};  // next producer ticket
  alignas(64) std::uint64_t head_ = 0;              // next consumer ticket, owned by the consumer
};

}  // namespace gatehouse::detail
