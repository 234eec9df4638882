// The "redis" section's connections in the gateway's metrics, against a real redis-server: what an
// operator watches to see that the shared rate limit and the shared bans have their Redis.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "gatehouse/config.hpp"
#include "gatehouse/redis.hpp"
#include "integration/fixture.hpp"
#include "support/redis_server.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

namespace {

// The value of one series in Prometheus text (-1 when absent).
double sample(const std::string& text, const std::string& series) {
  const std::string key = "\n" + series + " ";
  const auto at = text.find(key);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + key.size()));
}

// One call, waited for (bounded); true when Redis answered.
bool ping(RedisClient& c) {
  auto p = std::make_shared<std::promise<bool>>();
  auto f = p->get_future();
  c.async_command(RedisCommand{"PING"}, 300ms, [p](std::error_code ec, RedisReply) { p->set_value(!ec); });
  REQUIRE(f.wait_for(3s) == std::future_status::ready);
  return f.get();
}

}  // namespace

TEST_CASE("redis metrics: each connection by name, up or down, with its calls and its errors by reason") {
  RedisServer redis;
  const nlohmann::json doc = {
      {"listeners", {{{"address", "127.0.0.1"}, {"port", 0}}}},
      {"upstreams", {{"svc", {{"endpoints", {"127.0.0.1:9"}}}}}},
      {"routes", {{{"path", "/"}, {"upstream", "svc"}}}},
      {"redis",
       {{"main", {{"address", redis.address()}, {"timeout_ms", 300}, {"reconnect_min_ms", 20}, {"reconnect_max_ms", 100}}}}}};
  const GatewayConfig config = load_config(doc.dump());
  GatewayUnderTest g(config.options);
  apply(config, *g.gw);
  g.gw->start();
  REQUIRE(g.gw->metrics());
  RedisClient& client = *config.context.redis.at("main");
  REQUIRE(client.wait_connected(5s));
  for (int i = 0; i < 3; ++i) CHECK(ping(client));

  std::string text = "\n" + g.gw->metrics()->render_prometheus();
  CAPTURE(text);
  CHECK(sample(text, "gatehouse_redis_connected{redis=\"main\"}") == 1);
  CHECK(sample(text, "gatehouse_redis_calls_total{redis=\"main\"}") >= 3);
  CHECK(sample(text, "gatehouse_redis_call_errors_total{redis=\"main\",reason=\"timeout\"}") == 0);
  CHECK(sample(text, "gatehouse_redis_connects_total{redis=\"main\"}") == 1);
  CHECK(sample(text, "gatehouse_redis_pending_calls{redis=\"main\"}") == 0);

  // Redis gone: the connection reads 0, and calls fail at once (unavailable), counted by reason.
  redis.stop();
  for (int i = 0; i < 100 && client.connected(); ++i) std::this_thread::sleep_for(20ms);
  REQUIRE(!client.connected());
  CHECK(!ping(client));
  text = "\n" + g.gw->metrics()->render_prometheus();
  CHECK(sample(text, "gatehouse_redis_connected{redis=\"main\"}") == 0);
  // Each reason is reported (absent would read -1); the failed call is in one of them.
  double failed = 0;
  for (const char* reason : {"unavailable", "connection_lost", "timeout"}) {
    const double n = sample(text, std::string("gatehouse_redis_call_errors_total{redis=\"main\",reason=\"") + reason + "\"}");
    CHECK(n >= 0);
    failed += n;
  }
  CHECK(failed >= 1);
}
