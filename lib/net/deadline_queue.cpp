#include "net/deadline_queue.hpp"

#include <utility>

namespace gatehouse::detail {

DeadlineQueue::~DeadlineQueue() {
  for (Entry* e : heap_) e->index_ = Entry::kNone;
  // A wait still pending completes with operation_aborted and touches nothing (see arm_for_top).
}

void DeadlineQueue::schedule(Entry& e, clock::time_point at) {
  if (at == clock::time_point::max()) {
    cancel(e);
    return;
  }
  e.at_ = at;
  if (!e.scheduled()) {
    heap_.push_back(&e);  // amortized: the vector keeps its capacity
    e.key_ = at;
    e.index_ = heap_.size() - 1;
    sift_up(e.index_);
  } else if (at >= e.key_) {
    // Later: the entry comes up early and is put back then (on_timer). A wait is pending unless
    // arming failed for lack of memory: then this call arms.
    if (armed_at_ != clock::time_point::max()) return;
  } else {
    e.key_ = at;
    sift_up(e.index_);
  }
  // Re-arm only when the earliest deadline moved before the pending wait: a later one is found
  // when the wait completes.
  if (heap_.front()->key_ < armed_at_) arm_for_top();
}

void DeadlineQueue::cancel(Entry& e) noexcept {
  e.at_ = e.key_ = clock::time_point::max();
  if (!e.scheduled()) return;
  const std::size_t i = e.index_;
  e.index_ = Entry::kNone;
  Entry* last = heap_.back();
  heap_.pop_back();
  if (heap_.empty()) {
    // Nothing left to wait for: a pending wait would keep the executor's run() going (a drained
    // worker would not finish until the old deadline passed).
    armed_at_ = clock::time_point::max();
    timer_.cancel();
    return;
  }
  if (last == &e) return;
  place(i, last);
  sift_down(i);
  sift_up(last->index_);
  // The timer may now fire early for nothing; on_timer then re-arms for the real earliest.
}

void DeadlineQueue::arm_for_top() {
  armed_at_ = heap_.front()->key_;
  timer_.expires_at(armed_at_);  // cancels a pending wait: it completes with operation_aborted
  timer_.async_wait([this](const asio::error_code& ec) {
    if (ec) return;  // superseded, or the queue is going away
    on_timer();
  });
}

void DeadlineQueue::on_timer() noexcept {
  armed_at_ = clock::time_point::max();
  const auto now = clock::now();
  while (!heap_.empty() && heap_.front()->key_ <= now) {
    Entry* e = heap_.front();
    if (e->at_ > now) {
      // Moved later since it was placed: back in at its real deadline.
      e->key_ = e->at_;
      sift_down(0);
      continue;
    }
    cancel(*e);
    e->expire();
  }
  if (!heap_.empty()) {
    try {
      arm_for_top();
    } catch (...) {
      // Out of memory for the wait: the next schedule() arms again.
    }
  }
}

void DeadlineQueue::sift_up(std::size_t i) noexcept {
  Entry* e = heap_[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!(e->key_ < heap_[parent]->key_)) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, e);
}

void DeadlineQueue::sift_down(std::size_t i) noexcept {
  Entry* e = heap_[i];
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap_[child + 1]->key_ < heap_[child]->key_) ++child;
    if (!(heap_[child]->key_ < e->key_)) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, e);
}

}  // namespace gatehouse::detail
