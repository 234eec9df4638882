// The worker's deadline heap: the session timeouts (header, idle, send, upstream) rely on each
// entry expiring once, in deadline order, after its latest deadline, and never after a cancel.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "net/deadline_queue.hpp"
#include "net/slab_pool.hpp"
#include "util/recycler.hpp"

using gatehouse::detail::DeadlineQueue;
using namespace std::chrono_literals;

namespace {
struct Probe final : DeadlineQueue::Entry {
  Probe(std::string n, std::vector<std::string>& log) : name(std::move(n)), out(&log) {}
  void expire() noexcept override { out->push_back(name); }
  std::string name;
  std::vector<std::string>* out;
};
}  // namespace

TEST_CASE("deadlines expire in order, once, after their latest move; cancelled ones never") {
  asio::io_context io;
  DeadlineQueue q(io.get_executor());
  std::vector<std::string> log;
  Probe a("a", log), b("b", log), c("c", log), d("d", log), e("e", log);
  const auto now = DeadlineQueue::clock::now();
  q.schedule(a, now + 40ms);
  q.schedule(b, now + 10ms);
  q.schedule(c, now + 20ms);
  q.schedule(d, now + 5ms);
  q.schedule(e, now + 15ms);
  q.schedule(b, now + 50ms);  // moved later
  q.schedule(a, now + 1ms);   // moved earlier
  q.cancel(e);
  q.schedule(d, DeadlineQueue::clock::time_point::max());  // max removes it too
  CHECK(q.size() == 3);
  io.run_for(200ms);
  CHECK(log == std::vector<std::string>{"a", "c", "b"});
  CHECK(q.size() == 0);
  CHECK_FALSE(a.scheduled());
  CHECK(a.at() == DeadlineQueue::clock::time_point::max());
}

TEST_CASE("a deadline moved later, then earlier again, expires at its last deadline, not before") {
  // Moving later leaves the heap alone (the entry comes up early and is put back): the user
  // relies on a connection never timing out before its current deadline, nor after it.
  asio::io_context io;
  DeadlineQueue q(io.get_executor());
  std::vector<std::string> log;
  std::vector<DeadlineQueue::clock::time_point> when;
  struct Timed final : DeadlineQueue::Entry {
    Timed(std::string n, std::vector<std::string>& l, std::vector<DeadlineQueue::clock::time_point>& w)
        : name(std::move(n)), log(&l), when(&w) {}
    void expire() noexcept override {
      log->push_back(name);
      when->push_back(DeadlineQueue::clock::now());
    }
    std::string name;
    std::vector<std::string>* log;
    std::vector<DeadlineQueue::clock::time_point>* when;
  };
  Timed x("x", log, when), y("y", log, when), z("z", log, when), w("w", log, when);
  const auto now = DeadlineQueue::clock::now();
  q.schedule(x, now + 5ms);
  q.schedule(x, now + 80ms);  // later
  q.schedule(x, now + 60ms);  // earlier than 80, later than where it sits: 60 counts
  q.schedule(y, now + 30ms);
  q.schedule(z, now + 90ms);
  q.schedule(z, now + 120ms);  // later
  q.schedule(z, now + 10ms);   // earlier than anything before: 10 counts
  q.schedule(w, now + 70ms);   // x must come before this one: its 80 no longer counts
  CHECK(x.at() == now + 60ms);
  io.run_for(300ms);
  REQUIRE(log == std::vector<std::string>{"z", "y", "x", "w"});
  CHECK(when[0] >= now + 10ms);
  CHECK(when[1] >= now + 30ms);
  CHECK(when[2] >= now + 60ms);
  CHECK(q.size() == 0);
}

TEST_CASE("many deadlines keep heap order; an entry may reschedule itself from expire()") {
  asio::io_context io;
  DeadlineQueue q(io.get_executor());
  std::vector<std::string> log;
  std::vector<std::unique_ptr<Probe>> probes;
  const auto now = DeadlineQueue::clock::now();
  for (int i = 0; i < 64; ++i) {
    probes.push_back(std::make_unique<Probe>(std::to_string((i * 37) % 64), log));
    q.schedule(*probes.back(), now + std::chrono::milliseconds(1 + (i * 37) % 64));
  }
  for (int i = 0; i < 64; i += 3) q.cancel(*probes[i]);
  io.run_for(300ms);
  std::vector<int> fired;
  for (const auto& s : log) fired.push_back(std::stoi(s));
  CHECK(fired.size() == 64 - 22);
  for (std::size_t i = 1; i < fired.size(); ++i) CHECK(fired[i - 1] < fired[i]);
}

TEST_CASE("slab blocks are reused and fit the size asked for") {
  gatehouse::detail::SlabPool pool(100, 4);
  CHECK(pool.block_size() >= 100);
  CHECK(pool.block_size() % alignof(std::max_align_t) == 0);
  void* p[6];
  for (auto& x : p) x = pool.allocate();
  for (int i = 0; i < 6; ++i)
    for (int j = i + 1; j < 6; ++j) CHECK(p[i] != p[j]);
  pool.deallocate(p[3]);
  CHECK(pool.allocate() == p[3]);
  gatehouse::detail::SlabAllocator<int> alloc(pool);
  auto sp = std::allocate_shared<int>(alloc, 7);
  CHECK(*sp == 7);
}

TEST_CASE("a recycler hands back the objects given back to it, keeping no more than asked") {
  gatehouse::detail::Recycler<std::vector<int>> recycler(1);
  {
    auto a = recycler.take();
    auto b = recycler.take(3, 7);  // made new, from these constructor arguments
    CHECK(*b == std::vector<int>{7, 7, 7});
    CHECK(recycler.kept() == 0);
  }  // b goes back first and is kept; a finds the recycler full and is freed
  CHECK(recycler.kept() == 1);
  auto c = recycler.take();
  CHECK(recycler.kept() == 0);
  CHECK(*c == std::vector<int>{7, 7, 7});  // as its last user left it
}
