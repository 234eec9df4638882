#include "gatehouse/clock.hpp"

namespace gatehouse {
namespace {
class SystemClock final : public Clock {
 public:
  time_point now() const noexcept override { return std::chrono::system_clock::now(); }
};
}  // namespace

const Clock& Clock::system() noexcept {
  static const SystemClock clock;
  return clock;
}

}  // namespace gatehouse
