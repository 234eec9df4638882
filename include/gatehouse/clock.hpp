// A clock that middleware reads, so tests can replace it with testing::FakeClock.
#pragma once
#include <chrono>

namespace gatehouse {

class Clock {
 public:
  using time_point = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  virtual time_point now() const noexcept = 0;
  /// The real wall clock.
  static const Clock& system() noexcept;
};

}  // namespace gatehouse
