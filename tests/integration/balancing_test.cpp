// The load-balancing and retry seams of an upstream, end to end on loopback: a policy of the
// application's chooses the instance, retries see what was tried, and the default policies keep
// their promises (round robin spreads, a dead instance is skipped, nothing is retried once sent).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "gatehouse/testing.hpp"
#include "integration/fixture.hpp"
#include "support/httplib_server.hpp"
#include "support/raw_http.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

namespace {

// A service instance that says its name and counts its requests.
struct Instance {
  explicit Instance(std::string name) : name(std::move(name)) {
    server.Get("/.*", [this](const httplib::Request&, httplib::Response& res) {
      ++hits;
      res.set_content(this->name, "text/plain");
    });
    port = thread.start(server);
  }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port); }
  std::string name;
  std::atomic<int> hits{0};
  httplib::Server server;
  ServerThread thread;
  unsigned short port = 0;
};

std::string get(unsigned short port, const std::string& extra_headers = {}) {
  return exchange_raw(port, "GET /x HTTP/1.1\r\nHost: a\r\n" + extra_headers + "Connection: close\r\n\r\n", 5s);
}

// Always the instance named by the X-Instance header (index), else the last one; records what it
// was asked.
struct Recorded {
  std::mutex mu;
  std::vector<std::pair<unsigned, std::size_t>> picks;  // (attempt, tried.size())
  std::atomic<int> started{0}, ended_ok{0}, ended_failed{0};
};
class ByHeader final : public LoadBalancer {
 public:
  explicit ByHeader(Recorded& r) : r_(r) {}
  std::size_t pick(const PickRequest& p) override {
    {
      std::lock_guard lock(r_.mu);
      r_.picks.emplace_back(p.attempt, p.tried.size());
    }
    if (auto h = p.exchange.request().headers().get("x-instance")) return std::stoul(std::string(*h));
    return p.endpoints.size() - 1;
  }
  void on_attempt_start(const UpstreamEndpoint&) override { ++r_.started; }
  void on_attempt_end(const UpstreamEndpoint&, bool ok) override { ++(ok ? r_.ended_ok : r_.ended_failed); }

 private:
  Recorded& r_;
};

}  // namespace

TEST_CASE("balancing: an application's policy picks the instance, per request") {
  Instance a("a"), b("b"), c("c");
  Recorded rec;
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = Upstream::create({.name = "three",
                                                         .endpoints = {a.endpoint(), b.endpoint(), c.endpoint()},
                                                         .load_balancer = [&rec] { return std::make_unique<ByHeader>(rec); }})});
  const auto port = g.start();
  CHECK(body_of(get(port, "X-Instance: 0\r\n")) == "a");
  CHECK(body_of(get(port, "X-Instance: 1\r\n")) == "b");
  CHECK(body_of(get(port)) == "c");
  CHECK(body_of(get(port, "X-Instance: 1\r\n")) == "b");
  CHECK(a.hits == 1);
  CHECK(b.hits == 2);
  CHECK(c.hits == 1);
  CHECK(rec.started == 4);
  CHECK(rec.ended_ok == 4);
  CHECK(rec.ended_failed == 0);
}

TEST_CASE("balancing: a policy answering out of range means no instance: 503, never a hang") {
  Instance a("a");
  Recorded rec;
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = Upstream::create({.name = "one",
                                                         .endpoints = {a.endpoint()},
                                                         .load_balancer = [&rec] { return std::make_unique<ByHeader>(rec); }})});
  const auto port = g.start();
  const std::string r = get(port, "X-Instance: 7\r\n");
  CHECK(status_of(r) == 503);
  CHECK(body_of(r).find("no upstream endpoint available") != std::string::npos);
  CHECK(a.hits == 0);
}

TEST_CASE("balancing: round robin spreads requests evenly over the instances") {
  Instance a("a"), b("b");
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = Upstream::create({.name = "two", .endpoints = {a.endpoint(), b.endpoint()}})});
  const auto port = g.start();
  for (int i = 0; i < 10; ++i) CHECK(status_of(get(port)) == 200);
  CHECK(a.hits == 5);
  CHECK(b.hits == 5);
}

TEST_CASE("balancing: a retry after a failed connect tells the policy what was tried") {
  Instance live("live");
  Recorded rec;
  GatewayUnderTest g;
  // Index 0 is a dead port; the policy sends the first attempt there, retries to the last index.
  g.gw->route({.path = "/", .origin = Upstream::create({.name = "dead-then-live",
                                                         .endpoints = {"127.0.0.1:" + std::to_string(closed_port()),
                                                                       live.endpoint()},
                                                         .connect_retries = 1,
                                                         .load_balancer = [&rec] { return std::make_unique<ByHeader>(rec); }})});
  const auto port = g.start();
  const std::string r = get(port, "X-Instance: 0\r\n");
  // The header still says 0 on the retry, so this policy would pick the dead one again: it must
  // see attempt 1 with one endpoint tried to do better. Ours does not, so the retry fails too.
  CHECK(status_of(r) == 502);
  std::lock_guard lock(rec.mu);
  REQUIRE(rec.picks.size() == 2);
  CHECK(rec.picks[0] == std::pair<unsigned, std::size_t>{0, 0});
  CHECK(rec.picks[1] == std::pair<unsigned, std::size_t>{1, 1});
  CHECK(rec.ended_failed == 2);
}

TEST_CASE("balancing: round robin's retry goes to the instance not yet tried") {
  Instance live("live");
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = Upstream::create({.name = "dead-and-live",
                                                         .endpoints = {"127.0.0.1:" + std::to_string(closed_port()),
                                                                       live.endpoint()},
                                                         .connect_retries = 1})});
  const auto port = g.start();
  for (int i = 0; i < 6; ++i) {
    CAPTURE(i);
    const std::string r = get(port);
    CHECK(status_of(r) == 200);
    CHECK(body_of(r) == "live");
  }
}

namespace {
// Retries nothing; counts what it was asked.
struct NeverRetry final : RetryPolicy {
  bool should_retry(const RetryRequest& r) const override {
    asked.fetch_add(1);
    last_failure = r.failure;
    return false;
  }
  mutable std::atomic<int> asked{0};
  mutable AttemptFailure last_failure = AttemptFailure::timeout;
};
}  // namespace

TEST_CASE("balancing: the upstream's retry policy decides, and says why the attempt failed") {
  Instance live("live");
  auto never = std::make_shared<NeverRetry>();
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = Upstream::create({.name = "dead-first",
                                                         .endpoints = {"127.0.0.1:" + std::to_string(closed_port()),
                                                                       live.endpoint()},
                                                         .connect_retries = 5,
                                                         .retry_policy = never})});
  const auto port = g.start();
  // Round robin starts at the dead one: with no retry, that request fails; the next one is live.
  CHECK(status_of(get(port)) == 502);
  CHECK(never->asked == 1);
  CHECK(never->last_failure == AttemptFailure::connect_failed);
  CHECK(status_of(get(port)) == 200);
  CHECK(never->asked == 1);
}

TEST_CASE("balancing: the default retry policy never repeats a request the upstream may have seen") {
  const auto ex = gatehouse::testing::exchange("GET", "/");
  RetryRequest sent{ex, 0, AttemptFailure::reset, true, false, 3};
  RetryRequest refused{ex, 0, AttemptFailure::connect_failed, false, false, 3};
  const ConnectRetryPolicy policy(2);
  CHECK_FALSE(policy.should_retry(sent));
  CHECK(policy.should_retry(refused));
  refused.attempt = 2;
  CHECK_FALSE(policy.should_retry(refused));  // connect_retries exhausted
  refused.attempt = 0;
  refused.untried_endpoints = 0;
  CHECK_FALSE(policy.should_retry(refused));  // never the same instance again
}
