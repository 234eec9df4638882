// The time a deadline is computed from. Timeouts are seconds long and need no nanosecond clock,
// while steady_clock::now() costs about 60 ns on a VM's kvm-clock, and a proxied request sets
// deadlines about eight times. This reads the kernel's copy of the monotonic clock kept at each
// tick (CLOCK_MONOTONIC_COARSE, a memory read in the vDSO: about 4 ns). That copy holds the time of
// the last tick boundary counted, so it lags steady_clock::now() by up to a tick, and by up to
// one more while the next update is due: two ticks are added. A deadline from it is then late by
// up to two ticks (2-8 ms), and early only if the kernel's timekeeping stalls for longer than that.
// Durations that are measured (latency metrics, logs) keep steady_clock.
#pragma once
#include <chrono>
#include <ctime>

namespace gatehouse::detail {

inline std::chrono::steady_clock::time_point deadline_now() noexcept {
  using namespace std::chrono;
  // libstdc++'s steady_clock is CLOCK_MONOTONIC, the base of CLOCK_MONOTONIC_COARSE.
  static const nanoseconds tick = [] {
    timespec r{};
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &r) != 0) return nanoseconds(milliseconds(10));
    return seconds(r.tv_sec) + nanoseconds(r.tv_nsec);
  }();
  timespec ts{};
  if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0) return steady_clock::now();
  return steady_clock::time_point(
      duration_cast<steady_clock::duration>(seconds(ts.tv_sec) + nanoseconds(ts.tv_nsec) + 2 * tick));
}

}  // namespace gatehouse::detail
