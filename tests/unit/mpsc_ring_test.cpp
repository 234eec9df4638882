// The access log's queue (lib/util/mpsc_ring.hpp).
#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "util/mpsc_ring.hpp"

using gatehouse::detail::MpscRing;

TEST_CASE("ring: first in, first out; full and empty are reported") {
  MpscRing<std::string> ring(3);
  CHECK(ring.capacity() == 3);
  std::string v;
  CHECK_FALSE(ring.try_pop(v));
  for (const char* s : {"a", "b", "c"}) {
    v = s;
    CHECK(ring.try_push(v));
  }
  v = "d";
  CHECK_FALSE(ring.try_push(v));
  CHECK(v == "d");  // untouched when full
  CHECK(ring.claimed() == 3);
  std::string out;
  CHECK(ring.try_pop(out));
  CHECK(out == "a");
  CHECK(ring.try_push(v));
  for (const char* s : {"b", "c", "d"}) {
    out.clear();
    REQUIRE(ring.try_pop(out));
    CHECK(out == s);
  }
  CHECK_FALSE(ring.ready());
  CHECK(ring.popped() == 4);
  CHECK(MpscRing<int>(0).capacity() == 2);
}

TEST_CASE("ring: concurrent producers lose nothing and keep each producer's order") {
  constexpr int kProducers = 4, kPerProducer = 20'000;
  MpscRing<long> ring(16);
  std::atomic<int> started{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      started.fetch_add(1);
      while (started.load() < kProducers) std::this_thread::yield();
      for (long i = 0; i < kPerProducer; ++i) {
        long v = p * 1'000'000L + i;
        while (!ring.try_push(v)) std::this_thread::yield();
      }
    });
  }
  std::vector<long> next(kProducers, 0);
  long total = 0;
  bool in_order = true;
  while (total < long{kProducers} * kPerProducer) {
    long v = 0;
    if (!ring.try_pop(v)) {
      std::this_thread::yield();  // few cores: let the producers run
      continue;
    }
    const auto p = static_cast<std::size_t>(v / 1'000'000L);
    in_order = in_order && p < next.size() && v % 1'000'000L == next[p];
    if (p < next.size()) ++next[p];
    ++total;
  }
  for (auto& t : producers) t.join();
  CHECK(in_order);
  for (long n : next) CHECK(n == kPerProducer);
  long v = 0;
  CHECK_FALSE(ring.try_pop(v));
}
