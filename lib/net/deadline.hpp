// One timer per connection that enforces whichever deadline is current. Moving the deadline is a
// plain store: the timer is only re-armed when it fires early, so a request costs no timer syscalls.
#pragma once
#include <chrono>
#include <functional>
#include <memory>

#include <asio/steady_timer.hpp>

namespace gatehouse::detail {

class Deadline : public std::enable_shared_from_this<Deadline> {
 public:
  using clock = std::chrono::steady_clock;
  /// `on_expire` runs on the timer's executor when the current deadline passes.
  Deadline(const asio::any_io_executor& ex, std::function<void()> on_expire)
      : timer_(ex), on_expire_(std::move(on_expire)) {}

  /// Sets the deadline (clock::time_point::max() to disarm).
  void set(clock::time_point at) {
    at_ = at;
    if (at_ == clock::time_point::max() || (armed_ && armed_at_ <= at_)) return;
    arm(at_);
  }
  void set_in(clock::duration d) { set(clock::now() + d); }
  void disarm() noexcept { at_ = clock::time_point::max(); }
  /// Stops for good: the callback will not run again. Call before the owner goes away.
  void cancel() noexcept {
    at_ = clock::time_point::max();
    stopped_ = true;
    timer_.cancel();
  }

 private:
  void arm(clock::time_point at) {
    if (stopped_) return;
    armed_ = true;
    armed_at_ = at;
    const unsigned gen = ++generation_;
    timer_.expires_at(at);
    timer_.async_wait([self = shared_from_this(), gen](const asio::error_code& ec) {
      if (gen != self->generation_) return;  // superseded by a later arm()
      self->armed_ = false;
      if (ec || self->stopped_) return;
      if (self->at_ == clock::time_point::max()) return;
      if (clock::now() >= self->at_) {
        self->at_ = clock::time_point::max();
        self->on_expire_();
      } else {
        self->arm(self->at_);
      }
    });
  }

  asio::steady_timer timer_;
  std::function<void()> on_expire_;
  clock::time_point at_ = clock::time_point::max();
  clock::time_point armed_at_{};
  unsigned generation_ = 0;
  bool armed_ = false;
  bool stopped_ = false;
};

}  // namespace gatehouse::detail
