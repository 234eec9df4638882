// The deadline of a session's current step (reading a head, waiting for an upstream, sending to a
// slow client). When it passes, the pending I/O of the client stream and of the upstream stream
// being used is cancelled and timed_out() says why the operation failed. The deadline lives in
// the worker's DeadlineQueue: no timer and no pending operation per connection.
#pragma once
#include <chrono>

#include "net/deadline_queue.hpp"
#include "net/stream.hpp"
#include "util/deadline_clock.hpp"

namespace gatehouse::detail {

class Watchdog final : private DeadlineQueue::Entry {
 public:
  using clock = std::chrono::steady_clock;
  Watchdog(DeadlineQueue& queue, Stream& client) : queue_(&queue), client_(&client) {}
  ~Watchdog() { queue_->cancel(*this); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void set(clock::time_point at) {
    if (!stopped_) queue_->schedule(*this, at);
  }
  void set_in(clock::duration d) { set(deadline_now() + d); }
  void disarm() noexcept { queue_->cancel(*this); }
  bool timed_out() const noexcept { return timed_out_; }
  void clear() noexcept { timed_out_ = false; }
  void watch_upstream(Stream* s) noexcept { upstream_ = s; }
  Stream* upstream() const noexcept { return upstream_; }
  /// No deadline any more, for good (the session is closing).
  void stop() noexcept {
    stopped_ = true;
    queue_->cancel(*this);
  }

 private:
  void expire() noexcept override {
    timed_out_ = true;
    client_->cancel();
    if (upstream_) upstream_->cancel();
  }

  DeadlineQueue* queue_;
  Stream* client_;
  Stream* upstream_ = nullptr;
  bool timed_out_ = false;
  bool stopped_ = false;
};

}  // namespace gatehouse::detail
