// Connection-level protection without sockets: the listener's shared counts (total and per client
// address) and the accept backoff's schedule.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "net/accept_backoff.hpp"
#include "server/connection_limits.hpp"

using gatehouse::detail::AcceptBackoff;
using gatehouse::detail::ListenerSlot;
using gatehouse::detail::ListenerConnections;
using Admit = ListenerConnections::Admit;
using namespace std::chrono_literals;

namespace {
asio::ip::address ip(const char* s) { return asio::ip::make_address(s); }
}  // namespace

TEST_CASE("listener connections: a total limit, counted in and out") {
  ListenerConnections c;
  CHECK(c.admit(ip("10.0.0.1"), 2, 0) == Admit::ok);
  CHECK(c.admit(ip("10.0.0.2"), 2, 0) == Admit::ok);
  CHECK(c.admit(ip("10.0.0.3"), 2, 0) == Admit::listener_full);
  CHECK(c.open() == 2);  // a refused connection is not counted
  c.release(ip("10.0.0.1"), false);
  CHECK(c.admit(ip("10.0.0.3"), 2, 0) == Admit::ok);
  CHECK(c.admit(ip("10.0.0.4"), 0, 0) == Admit::ok);  // 0: no limit
  CHECK(c.open() == 3);
}

TEST_CASE("listener connections: per client address, IPv4 and its IPv6-mapped form alike") {
  ListenerConnections c;
  CHECK(c.admit(ip("192.0.2.7"), 0, 2) == Admit::ok);
  CHECK(c.admit(ip("::ffff:192.0.2.7"), 0, 2) == Admit::ok);
  CHECK(c.admit(ip("192.0.2.7"), 0, 2) == Admit::client_full);
  CHECK(c.admit(ip("192.0.2.8"), 0, 2) == Admit::ok);  // another client
  CHECK(c.admit(ip("2001:db8::1"), 0, 2) == Admit::ok);
  CHECK(c.open_from(ip("192.0.2.7")) == 2);
  CHECK(c.open() == 4);
  c.release(ip("192.0.2.7"), true);
  CHECK(c.open_from(ip("192.0.2.7")) == 1);
  CHECK(c.admit(ip("192.0.2.7"), 0, 2) == Admit::ok);
  // The total limit is checked first, and a refusal counts nothing.
  CHECK(c.admit(ip("192.0.2.9"), 4, 2) == Admit::listener_full);  // 4 open already
  CHECK(c.open_from(ip("192.0.2.9")) == 0);
}

TEST_CASE("connection slot: gives its place back once, when it ends or is replaced") {
  auto c = std::make_shared<ListenerConnections>();
  REQUIRE(c->admit(ip("10.0.0.1"), 1, 1) == Admit::ok);
  {
    ListenerSlot slot(c, ip("10.0.0.1"), true);
    ListenerSlot moved(std::move(slot));
    CHECK(c->open() == 1);
  }
  CHECK(c->open() == 0);
  CHECK(c->open_from(ip("10.0.0.1")) == 0);
  CHECK(c->admit(ip("10.0.0.1"), 1, 1) == Admit::ok);
}

TEST_CASE("listener connections: workers on several threads never exceed the limits together") {
  ListenerConnections c;
  constexpr std::size_t kMax = 3, kPerClient = 2;
  std::atomic<int> inside{0}, worst{0}, from_a{0}, worst_a{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      const auto client = ip(t % 2 ? "10.0.0.1" : "10.0.0.2");
      for (int i = 0; i < 20'000; ++i) {
        if (c.admit(client, kMax, kPerClient) != Admit::ok) continue;
        const int now = ++inside;
        int w = worst.load();
        while (now > w && !worst.compare_exchange_weak(w, now)) {}
        if (t % 2) {
          const int a = ++from_a;
          int wa = worst_a.load();
          while (a > wa && !worst_a.compare_exchange_weak(wa, a)) {}
          --from_a;
        }
        --inside;
        c.release(client, true);
      }
    });
  }
  for (auto& w : workers) w.join();
  CHECK(worst.load() <= static_cast<int>(kMax));
  CHECK(worst_a.load() <= static_cast<int>(kPerClient));
  CHECK(c.open() == 0);
}

TEST_CASE("accept backoff: 10 ms doubling to 1 s, one episode until an accept succeeds") {
  AcceptBackoff b;
  CHECK_FALSE(b.active());
  const std::chrono::milliseconds expected[] = {10ms, 20ms, 40ms, 80ms, 160ms, 320ms, 640ms, 1000ms, 1000ms};
  std::chrono::milliseconds sum{0};
  for (auto e : expected) {
    CHECK(b.next() == e);
    sum += e;
  }
  CHECK(b.active());
  CHECK(b.retries() == 9);
  CHECK(b.paused() == sum);
  b.reset();
  CHECK_FALSE(b.active());
  CHECK(b.next() == 10ms);
}
