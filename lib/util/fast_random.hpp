// A cheap per-thread pseudo-random source for jitter (not for anything secret).
#pragma once
#include <chrono>
#include <cstdint>
#include <random>
#include <thread>

namespace gatehouse::detail {

/// Uniform in [0, 1). splitmix64, seeded once per thread.
inline double random_unit() noexcept {
  thread_local std::uint64_t state = [] {
    std::uint64_t seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    seed ^= std::hash<std::thread::id>{}(std::this_thread::get_id()) * 0x9e3779b97f4a7c15ULL;
    try {
      seed ^= static_cast<std::uint64_t>(std::random_device{}()) << 32;
    } catch (...) {
      // No entropy device: the clock and thread id still differ between threads and runs.
    }
    return seed;
  }();
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

}  // namespace gatehouse::detail
