// Deadlines of one worker's connections on one timer: a min-heap of entries that live inside the
// connections themselves. A connection's timeout costs no allocation and no pending Asio
// operation of its own (an idle keep-alive connection stays small), and moving a deadline is a
// heap sift, not a timer cancel and re-arm.
// Moving a deadline later, which a busy connection does several times per request, does not
// touch the heap at all (as nginx does with its timers): the entry keeps its earlier position
// and, when that comes up, is put back at its real deadline instead of expiring.
#pragma once
#include <chrono>
#include <cstddef>
#include <limits>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

namespace gatehouse::detail {

class DeadlineQueue {
 public:
  using clock = std::chrono::steady_clock;

  /// Something with a deadline; embedded in its owner, which must cancel() it before it dies.
  class Entry {
   public:
    Entry() = default;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    bool scheduled() const noexcept { return index_ != kNone; }
    /// The deadline (max() when none).
    clock::time_point at() const noexcept { return at_; }

    /// Called on the queue's executor once the deadline has passed (the entry is no longer
    /// scheduled by then; it may schedule itself again).
    virtual void expire() noexcept = 0;

   protected:
    ~Entry() = default;

   private:
    friend class DeadlineQueue;
    static constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();
    clock::time_point at_ = clock::time_point::max();   // the deadline
    clock::time_point key_ = clock::time_point::max();  // its place in the heap: key_ <= at_
    std::size_t index_ = kNone;
  };

  explicit DeadlineQueue(const asio::any_io_executor& ex) : timer_(ex) {}
  ~DeadlineQueue();
  DeadlineQueue(const DeadlineQueue&) = delete;
  DeadlineQueue& operator=(const DeadlineQueue&) = delete;

  /// Sets or moves the entry's deadline (time_point::max() removes it).
  void schedule(Entry& e, clock::time_point at);
  void cancel(Entry& e) noexcept;
  std::size_t size() const noexcept { return heap_.size(); }

 private:
  void on_timer() noexcept;
  void arm_for_top();
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void place(std::size_t i, Entry* e) noexcept {
    heap_[i] = e;
    e->index_ = i;
  }

  std::vector<Entry*> heap_;
  asio::steady_timer timer_;
  clock::time_point armed_at_ = clock::time_point::max();  // max: no wait pending
};

}  // namespace gatehouse::detail
