// The deadline of a session's current step (reading a head, waiting for an upstream, sending to a
// slow client). When it passes, the pending I/O of the client stream and of the upstream stream
// being used is cancelled and timed_out() says why the operation failed.
#pragma once
#include <chrono>
#include <memory>

#include "net/deadline.hpp"
#include "net/stream.hpp"

namespace gatehouse::detail {

class Watchdog {
 public:
  using clock = std::chrono::steady_clock;
  Watchdog(const asio::any_io_executor& ex, Stream& client)
      : client_(&client), deadline_(std::make_shared<Deadline>(ex, [this] { fire(); })) {}
  ~Watchdog() { deadline_->cancel(); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void set(clock::time_point at) { deadline_->set(at); }
  void set_in(clock::duration d) { deadline_->set_in(d); }
  void disarm() noexcept { deadline_->disarm(); }
  /// True once the deadline passed, until clear().
  bool timed_out() const noexcept { return timed_out_; }
  void clear() noexcept { timed_out_ = false; }
  /// The upstream stream in use, cancelled too when the deadline passes (null: none).
  void watch_upstream(Stream* s) noexcept { upstream_ = s; }
  Stream* upstream() const noexcept { return upstream_; }
  /// Stops for good (the session is ending).
  void stop() noexcept { deadline_->cancel(); }

 private:
  void fire() noexcept {
    timed_out_ = true;
    client_->cancel();
    if (upstream_) upstream_->cancel();
  }

  Stream* client_;
  Stream* upstream_ = nullptr;
  std::shared_ptr<Deadline> deadline_;
  bool timed_out_ = false;
};

}  // namespace gatehouse::detail
