// The WAF's evaluation pool: bounded, never blocking the submitter.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "waf/waf_pool.hpp"

using gatehouse::detail::WafPool;
using gatehouse::detail::WafTask;

namespace {

std::atomic<int> started{0};

class Gate final : public WafTask {
 public:
  explicit Gate(std::shared_future<void> open, std::atomic<int>& ran) : open_(std::move(open)), ran_(ran) {}
  void run() noexcept override {
    ++started;
    open_.wait();
    ++ran_;
  }

 private:
  std::shared_future<void> open_;
  std::atomic<int>& ran_;
};

}  // namespace

TEST_CASE("WAF pool: a full queue refuses at once, and every accepted task runs") {
  std::promise<void> open;
  std::shared_future<void> gate = open.get_future().share();
  std::atomic<int> ran{0};
  {
    WafPool pool(1, 2);
    CHECK(pool.try_submit(std::make_shared<Gate>(gate, ran)));  // running (blocked on the gate)
    // Wait until the thread took it, so the queue is empty again.
    for (int i = 0; i < 5000 && started == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    REQUIRE(started == 1);
    CHECK(pool.try_submit(std::make_shared<Gate>(gate, ran)));
    CHECK(pool.try_submit(std::make_shared<Gate>(gate, ran)));
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(pool.try_submit(std::make_shared<Gate>(gate, ran)));  // queue of 2 is full
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(50));
    CHECK(pool.pending() == 3);
    open.set_value();
    for (int i = 0; i < 2000 && ran < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CHECK(ran == 3);
  }
}
