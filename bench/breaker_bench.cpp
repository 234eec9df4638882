// ns per request of circuit-breaker accounting: what an upstream's breakers add to every proxied
// request (a request in flight: one atomic in, one out), alone and with threads sharing the
// upstream's counters, next to a plain per-thread counter; and the cost of a retry admission under
// a budget. Run: build/bench/breaker_bench
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>
#include <vector>

#include "proxy/circuit_breaker.hpp"

namespace {

using namespace gatehouse;
using detail::BreakerHold;
using detail::CircuitBreaker;
constexpr long kIterations = 5'000'000;

// ns per iteration of `body` run on `threads` threads at once (each doing kIterations).
template <class Body>
double ns_per_iteration(unsigned threads, Body body) {
  for (long i = 0; i < kIterations / 20; ++i) body();  // warm up
  std::atomic<unsigned> ready{0};
  std::vector<std::thread> pool;
  const auto start = std::chrono::steady_clock::now();
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      ++ready;
      while (ready.load() < threads) {
      }
      for (long i = 0; i < kIterations; ++i) body();
    });
  }
  for (auto& t : pool) t.join();
  const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
  return took.count() / kIterations;  // wall time per iteration of one thread
}

}  // namespace

int main() {
  CircuitBreaker breaker({.max_requests = 1'000'000});
  const unsigned hw = std::max(2u, std::thread::hardware_concurrency());
  std::printf("operation\tthreads\tns per request (wall, per thread)\n");
  for (unsigned threads : {1u, 2u, hw}) {
    std::printf("request in flight: acquire(max_requests) + release\t%u\t%.1f\n", threads,
                ns_per_iteration(threads, [&] {
                  BreakerHold h = detail::acquire(breaker, BreakerLimit::max_requests);
                  if (!h) std::abort();
                }));
  }
  // For scale: a counter each thread owns (what per-worker counts would cost, without a global limit).
  for (unsigned threads : {1u, 2u}) {
    std::printf("(for scale: thread-local counter in + out)\t%u\t%.1f\n", threads, ns_per_iteration(threads, [] {
                  thread_local volatile long n = 0;
                  n = n + 1;
                  n = n - 1;
                }));
  }
  const std::optional<RetryBudget> budget = RetryBudget{};
  BreakerHold in_flight = detail::acquire(breaker, BreakerLimit::max_requests);
  std::printf("retry admitted under a budget + released\t1\t%.1f\n", ns_per_iteration(1, [&] {
                if (breaker.try_acquire_retry(budget) != CircuitBreaker::RetryVerdict::admitted) std::abort();
                breaker.release(BreakerLimit::max_retries);
              }));
  const CircuitBreakerState s = breaker.state();
  return s.requests == 1 ? 0 : 1;
}
