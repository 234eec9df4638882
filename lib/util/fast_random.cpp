#include "util/fast_random.hpp"

#include <sys/random.h>

#include <chrono>
#include <random>

namespace gatehouse::detail {

FastRandom::FastRandom() noexcept {
  if (getrandom(s_, sizeof s_, 0) != static_cast<ssize_t>(sizeof s_)) {
    try {
      std::random_device rd;
      for (auto& word : s_) word = (std::uint64_t{rd()} << 32) | rd();
    } catch (...) {
      // No entropy source at all: the clock and the state's address still differ per thread and
      // per process, which keeps ids unique.
      const auto now = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
      for (auto& word : s_) word = now ^ reinterpret_cast<std::uintptr_t>(&word);
    }
  }
  if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 0x9e3779b97f4a7c15ULL;  // all-zero never moves
}

}  // namespace gatehouse::detail
