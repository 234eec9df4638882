// The shared rate limiter against a real redis-server on a free loopback port: one limit across
// gateway instances, Redis killed and restarted mid-run, and accuracy across three instances.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "integration/fixture.hpp"
#include "gatehouse/redis.hpp"
#include "integration/rate_limit_support.hpp"
#include "support/raw_http.hpp"
#include "support/redis_server.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<RedisClient> client_for(const RedisServer& redis) {
  auto c = RedisClient::create({.address = redis.address(), .timeout = 20ms, .reconnect_min = 20ms,
                                .reconnect_max = 200ms});
  REQUIRE(c->wait_connected(5s));
  return c;
}

RateLimitOptions shared_limit(std::shared_ptr<RedisClient> c, std::uint64_t per_second, std::uint64_t burst,
                              RateLimitFailureMode on_failure, std::string prefix) {
  RateLimitOptions o;
  o.limits = {{.name = "global", .requests = per_second, .period = 1s, .burst = burst}};
  o.shared.redis = std::move(c);
  o.shared.timeout = 20ms;  // a loaded CI machine; production uses a few ms
  o.shared.on_failure = on_failure;
  o.shared.key_prefix = std::move(prefix);
  return o;
}

// Closed on failure, so that a decision Redis did not make shows up as a failure, not as an
// admission; a deadline that a loaded CI machine keeps (this test is about accuracy, not deadlines).
RateLimitOptions accuracy_limit(std::shared_ptr<RedisClient> c) {
  auto o = shared_limit(std::move(c), 100, 5, RateLimitFailureMode::closed, "acc:");
  o.shared.timeout = 500ms;
  return o;
}

}  // namespace

TEST_CASE("shared rate limit: two gateways, one limit; keys over the limit are refused without a round trip") {
  RedisServer redis;
  auto c = client_for(redis);
  auto o = shared_limit(c, 1, 4, RateLimitFailureMode::closed, "t1:");
  o.limits[0].period = 60s;  // 4 at once, then one a minute
  GatewayUnderTest a, b;
  a.gw->route(limited_route(std::make_shared<RateLimiter>(o)));
  b.gw->route(limited_route(std::make_shared<RateLimiter>(o)));
  KeepAliveClient ca(a.start()), cb(b.start());
  CHECK(ca.get() == 200);
  CHECK(cb.get() == 200);
  CHECK(ca.get() == 200);
  CHECK(cb.get() == 200);
  CHECK(ca.get() == 429);  // the fifth, on either instance
  const auto calls = c->stats().calls;
  CHECK(cb.get() == 429);
  CHECK(cb.get() == 429);
  CHECK(c->stats().calls == calls + 1);  // b asked once, then used its cache of refused keys
}

TEST_CASE("shared rate limit: Redis killed mid-run and restarted: no request hangs, the failure mode holds, it recovers") {
  RedisServer redis;
  auto c = client_for(redis);
  GatewayUnderTest open_gw, closed_gw, local_gw;
  open_gw.gw->route(limited_route(std::make_shared<RateLimiter>(shared_limit(c, 1000, 1000, RateLimitFailureMode::open, "o:"))));
  closed_gw.gw->route(limited_route(std::make_shared<RateLimiter>(shared_limit(c, 1000, 1000, RateLimitFailureMode::closed, "c:"))));
  local_gw.gw->route(limited_route(std::make_shared<RateLimiter>(shared_limit(c, 1, 2, RateLimitFailureMode::local, "l:"))));
  KeepAliveClient open_c(open_gw.start()), closed_c(closed_gw.start()), local_c(local_gw.start());
  CHECK(open_c.get() == 200);
  CHECK(closed_c.get() == 200);

  redis.stop();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int> open_s, closed_s, local_s;
  for (int i = 0; i < 5; ++i) {
    open_s.push_back(open_c.get());
    closed_s.push_back(closed_c.get());
    local_s.push_back(local_c.get());
  }
  CHECK(since(t0) < 3s);  // 15 requests, each at most one deadline
  CHECK(open_s == std::vector<int>(5, 200));
  CHECK(closed_s == std::vector<int>(5, 503));
  CHECK(local_s == std::vector<int>{200, 200, 429, 429, 429});  // the local table: burst 2

  redis.start();
  REQUIRE(c->wait_connected(5s));
  int closed_ok = 0;
  for (int i = 0; i < 50 && closed_ok == 0; ++i) {
    closed_ok = closed_c.get() == 200;
    if (!closed_ok) std::this_thread::sleep_for(50ms);
  }
  CHECK(closed_ok == 1);
}

TEST_CASE("shared rate limit: Redis stopped (SIGSTOP): every decision ends at its deadline, then it recovers") {
  RedisServer redis;
  auto c = client_for(redis);
  GatewayUnderTest open_gw, closed_gw;
  open_gw.gw->route(limited_route(std::make_shared<RateLimiter>(shared_limit(c, 1000, 1000, RateLimitFailureMode::open, "so:"))));
  closed_gw.gw->route(limited_route(std::make_shared<RateLimiter>(shared_limit(c, 1000, 1000, RateLimitFailureMode::closed, "sc:"))));
  KeepAliveClient open_c(open_gw.start()), closed_c(closed_gw.start());
  CHECK(open_c.get() == 200);
  CHECK(closed_c.get() == 200);

  redis.pause();  // connected, but never answers: only the deadline ends a decision
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int> open_s, closed_s;
  for (int i = 0; i < 5; ++i) {
    open_s.push_back(open_c.get());
    closed_s.push_back(closed_c.get());
  }
  CHECK(since(t0) < 3s);  // 10 requests of one 20 ms deadline each, with room for a loaded machine
  CHECK(open_s == std::vector<int>(5, 200));
  CHECK(closed_s == std::vector<int>(5, 503));
  CHECK(c->stats().timeouts >= 10);

  redis.resume();
  int closed_ok = 0;
  for (int i = 0; i < 50 && closed_ok == 0; ++i) {
    closed_ok = closed_c.get() == 200;
    if (!closed_ok) std::this_thread::sleep_for(50ms);
  }
  CHECK(closed_ok == 1);
}

// Demanded by the issue: three instances sharing 100/s, offered 300/s in total for 10 s, admit
// 1,000 ± 3% (a 10 s test). Three gateways in this process, each with its own Redis connection.
TEST_CASE("shared rate limit accuracy: three gateways, 100/s shared, 300/s offered for 10 s admit 1000 +- 3%") {
  RedisServer redis;
  std::vector<std::unique_ptr<GatewayUnderTest>> gateways;
  std::vector<std::shared_ptr<RedisClient>> clients;
  std::vector<unsigned short> ports;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(client_for(redis));
    gateways.push_back(std::make_unique<GatewayUnderTest>());
    gateways.back()->gw->route(
        limited_route(std::make_shared<RateLimiter>(accuracy_limit(clients.back()))));
    ports.push_back(gateways.back()->start());
  }
  // One paced client thread per instance, 100/s each, shifted by a third of a period.
  std::atomic<int> admitted{0}, refused{0}, failed{0};
  const auto start = std::chrono::steady_clock::now() + 50ms;
  std::vector<std::thread> threads;
  for (int g = 0; g < 3; ++g) {
    threads.emplace_back([&, g] {
      KeepAliveClient c(ports[static_cast<std::size_t>(g)]);
      for (int i = 0; i < 1000; ++i) {
        const auto due = start + i * 10ms + g * std::chrono::microseconds(3333);
        if (due >= start + 10s) break;
        std::this_thread::sleep_until(due);
        const int s = c.get();
        (s == 200 ? admitted : s == 429 ? refused : failed)++;
      }
    });
  }
  for (auto& t : threads) t.join();
  MESSAGE("admitted " << admitted.load() << ", refused " << refused.load() << ", failed " << failed.load());
  CHECK(failed == 0);
  CHECK(admitted >= 970);
  CHECK(admitted <= 1030);
}
