// How long an accept loop waits after a failed accept (out of file descriptors, say): 10 ms,
// doubling to at most 1 s, until an accept succeeds again. An episode starts with the first
// failure and ends with the next success; the loop logs both ends, never each retry.
#pragma once
#include <algorithm>
#include <chrono>

namespace gatehouse::detail {

class AcceptBackoff {
 public:
  static constexpr std::chrono::milliseconds kFirst{10};
  static constexpr std::chrono::milliseconds kMax{1000};

  /// In an episode (a failure since the last success).
  bool active() const noexcept { return retries_ > 0; }
  /// The wait before the next attempt, after another failure.
  std::chrono::milliseconds next() noexcept {
    delay_ = retries_ == 0 ? kFirst : std::min(delay_ * 2, kMax);
    ++retries_;
    paused_ += delay_;
    return delay_;
  }
  /// The episode so far: time spent waiting, failed attempts.
  std::chrono::milliseconds paused() const noexcept { return paused_; }
  unsigned retries() const noexcept { return retries_; }
  /// An accept succeeded: the episode is over.
  void reset() noexcept { *this = AcceptBackoff{}; }

 private:
  std::chrono::milliseconds delay_{0};
  std::chrono::milliseconds paused_{0};
  unsigned retries_ = 0;
};

}  // namespace gatehouse::detail
