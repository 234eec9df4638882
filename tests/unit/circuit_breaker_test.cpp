// Circuit breakers and the retry budget: the arithmetic an operator relies on when an upstream is
// overloaded — a limit is never exceeded (even by threads racing for the last unit), every refusal
// is counted, the budget lets max(min, percent of requests in flight) retries run, and a trip is
// logged at most once a second. No sockets; time is given explicitly.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gatehouse/upstream.hpp"
#include "proxy/circuit_breaker.hpp"

using namespace gatehouse;
using gatehouse::detail::BreakerHold;
using gatehouse::detail::CircuitBreaker;
using gatehouse::detail::retry_budget_allowance;

TEST_CASE("circuit breaker: a limit admits exactly that many, counts each refusal, and frees on release") {
  CircuitBreaker b({.max_connections = 2, .max_pending_requests = 1, .max_requests = 3, .max_retries = 0});
  std::vector<BreakerHold> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(detail::acquire(b, BreakerLimit::max_requests));
    CHECK(static_cast<bool>(held.back()));
  }
  CHECK_FALSE(static_cast<bool>(detail::acquire(b, BreakerLimit::max_requests)));
  CHECK_FALSE(static_cast<bool>(detail::acquire(b, BreakerLimit::max_requests)));
  CircuitBreakerState s = b.state();
  CHECK(s.requests == 3);
  CHECK(s.tripped(BreakerLimit::max_requests) == 2);
  CHECK(s.tripped(BreakerLimit::max_connections) == 0);
  held.pop_back();  // one request ends: room for one more
  CHECK(b.state().requests == 2);
  CHECK(static_cast<bool>(detail::acquire(b, BreakerLimit::max_requests)));  // held only for this expression
  CHECK(b.state().requests == 2);
  held.clear();
  CHECK(b.state().requests == 0);

  // The limits are independent; a refusal that will wait is not a trip until it gives up.
  CHECK(b.try_acquire(BreakerLimit::max_connections));
  CHECK(b.try_acquire(BreakerLimit::max_connections));
  CHECK_FALSE(b.try_acquire(BreakerLimit::max_connections, false));
  CHECK(b.state().tripped(BreakerLimit::max_connections) == 0);
  b.count_trip(BreakerLimit::max_connections);
  CHECK(b.state().tripped(BreakerLimit::max_connections) == 1);
  CHECK(b.state().connections == 2);
  b.release(BreakerLimit::max_connections);
  b.release(BreakerLimit::max_connections);
  CHECK(b.state().connections == 0);

  // max_retries 0: no retry at all without a budget.
  CHECK(b.try_acquire_retry(std::nullopt) == CircuitBreaker::RetryVerdict::max_retries);
  CHECK(b.state().tripped(BreakerLimit::max_retries) == 1);
  CHECK(b.state().limit(BreakerLimit::max_requests) == 3);
}

TEST_CASE("circuit breaker: threads racing for the last units never hold more than the limit together") {
  CircuitBreaker b({.max_requests = 5});
  std::atomic<int> holding{0}, most{0};
  std::atomic<long> admitted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20'000; ++i) {
        BreakerHold h = detail::acquire(b, BreakerLimit::max_requests);
        if (!h) {
          ++refused;
          continue;
        }
        ++admitted;
        const int now = ++holding;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        --holding;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(most.load() <= 5);
  CHECK(admitted + refused == 80'000);
  CHECK(b.state().requests == 0);
  CHECK(b.state().tripped(BreakerLimit::max_requests) == static_cast<std::uint64_t>(refused.load()));
}

TEST_CASE("retry budget: max(min_concurrency, percent of the requests in flight)") {
  const RetryBudget envoy{20.0, 3};
  CHECK(retry_budget_allowance(envoy, 0) == 3);
  CHECK(retry_budget_allowance(envoy, 10) == 3);
  CHECK(retry_budget_allowance(envoy, 19) == 3);
  CHECK(retry_budget_allowance(envoy, 20) == 4);
  CHECK(retry_budget_allowance(envoy, 1000) == 200);
  CHECK(retry_budget_allowance({0.0, 1}, 1000) == 1);
  CHECK(retry_budget_allowance({100.0, 0}, 7) == 7);
  CHECK(retry_budget_allowance({50.0, 0}, 1) == 0);  // rounds down: half a retry is none

  // Against the breaker's own count of requests in flight.
  CircuitBreaker b({.max_requests = 100, .max_retries = 0});  // max_retries is replaced by the budget
  std::vector<BreakerHold> requests;
  for (int i = 0; i < 10; ++i) requests.push_back(detail::acquire(b, BreakerLimit::max_requests));
  const std::optional<RetryBudget> budget = RetryBudget{20.0, 1};  // 10 in flight: 2 retries
  CHECK(b.try_acquire_retry(budget) == CircuitBreaker::RetryVerdict::admitted);
  CHECK(b.try_acquire_retry(budget) == CircuitBreaker::RetryVerdict::admitted);
  CHECK(b.try_acquire_retry(budget) == CircuitBreaker::RetryVerdict::budget_exhausted);
  CHECK(b.state().retries == 2);
  CHECK(b.state().retry_budget_exhausted == 1);
  CHECK(b.state().tripped(BreakerLimit::max_retries) == 0);  // the budget is not a trip
  // More requests in flight: more room.
  for (int i = 0; i < 5; ++i) requests.push_back(detail::acquire(b, BreakerLimit::max_requests));
  CHECK(b.try_acquire_retry(budget) == CircuitBreaker::RetryVerdict::admitted);  // 15 in flight: 3
  b.release(BreakerLimit::max_retries);
  b.release(BreakerLimit::max_retries);
  b.release(BreakerLimit::max_retries);
  CHECK(b.state().retries == 0);
}

TEST_CASE("retry backoff: full jitter within [0, min(max, base * 2^(n-1))]") {
  using std::chrono::milliseconds;
  const RetryBackoff b{milliseconds(25), milliseconds(250)};
  CHECK(backoff_delay(b, 1, 0.0) == milliseconds(0));
  CHECK(backoff_delay(b, 1, 0.999999) == milliseconds(24));
  CHECK(backoff_delay(b, 2, 0.5) == milliseconds(25));
  CHECK(backoff_delay(b, 3, 0.999999) == milliseconds(99));
  CHECK(backoff_delay(b, 4, 0.999999) == milliseconds(199));
  CHECK(backoff_delay(b, 5, 0.999999) == milliseconds(249));    // capped at max
  CHECK(backoff_delay(b, 1000, 0.999999) == milliseconds(249));  // no overflow
  CHECK(backoff_delay({milliseconds(0), milliseconds(0)}, 3, 0.9) == milliseconds(0));
  CHECK(backoff_delay(b, 0, 0.9) == milliseconds(0));
  CHECK(backoff_delay({milliseconds(100), milliseconds(10)}, 1, 0.5) == milliseconds(50));  // max below base: base
  // Spread: over many draws the delays cover the range, not one point (they are jittered).
  milliseconds lo = milliseconds::max(), hi = milliseconds::min();
  for (int i = 0; i < 1000; ++i) {
    const double r = static_cast<double>(i) / 1000.0;
    const auto d = backoff_delay(b, 3, r);
    CHECK(d >= milliseconds(0));
    CHECK(d < milliseconds(100));
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  CHECK(lo == milliseconds(0));
  CHECK(hi == milliseconds(99));
}

TEST_CASE("circuit breaker: a trip is logged at most once a second, whatever the rate") {
  CircuitBreaker b({});
  using steady = std::chrono::steady_clock;
  const steady::time_point t0{std::chrono::seconds(1000)};  // a fake time: the function is given it
  CHECK(b.take_log_turn(t0));
  CHECK_FALSE(b.take_log_turn(t0 + std::chrono::milliseconds(1)));
  CHECK_FALSE(b.take_log_turn(t0 + std::chrono::milliseconds(999)));
  CHECK(b.take_log_turn(t0 + std::chrono::milliseconds(1000)));
  CHECK_FALSE(b.take_log_turn(t0 + std::chrono::milliseconds(1500)));
  CHECK(b.take_log_turn(t0 + std::chrono::seconds(5)));
}

TEST_CASE("an upstream shows its breakers through the C++ API") {
  auto up = Upstream::create({.name = "users", .endpoints = {"127.0.0.1:1"},
                              .circuit_breaker = {.max_connections = 7, .max_requests = 9}});
  const CircuitBreakerState s = up->circuit_breaker();
  CHECK(s.limits.max_connections == 7);
  CHECK(s.limits.max_requests == 9);
  CHECK(s.limits.max_pending_requests == 1024);  // Envoy's defaults for the rest
  CHECK(s.limits.max_retries == 3);
  CHECK(s.requests == 0);
  CHECK(to_string(BreakerLimit::max_pending_requests) == "max_pending_requests");
}
