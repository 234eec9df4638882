// The "redis" and "bans" sections: what they build, and a precise error for each mistake.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "config/sections.hpp"
#include "gatehouse/bans.hpp"
#include "gatehouse/config.hpp"
#include "gatehouse/redis.hpp"
#include "gatehouse/security_events.hpp"

using gatehouse::ConfigError;
using gatehouse::load_config;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

json base() {
  return json::parse(R"({
    "listeners": [ { "port": 8080 } ],
    "upstreams": { "users": { "endpoints": ["127.0.0.1:9001"] } },
    "routes": [ { "path": "/users", "upstream": "users" } ]
  })");
}

std::string error_path(const json& j) {
  try {
    load_config(j.dump());
  } catch (const ConfigError& e) {
    return e.path();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("redis: every key maps onto RedisOptions") {
  const auto o = gatehouse::detail::parse_redis_options(json::parse(R"({
    "address": "10.0.0.7:6380", "username": "gw", "password": "pw", "db": 3, "timeout_ms": 4,
    "connect_timeout_ms": 300, "reconnect_min_ms": 10, "reconnect_max_ms": 900, "stall_timeout_ms": 1500,
    "max_pending": 500
  })"), "/redis/main", "main");
  CHECK(o.name == "main");
  CHECK(o.address == "10.0.0.7:6380");
  CHECK(o.username == "gw");
  CHECK(o.password == "pw");
  CHECK(o.db == 3);
  CHECK(o.timeout == 4ms);
  CHECK(o.connect_timeout == 300ms);
  CHECK(o.reconnect_min == 10ms);
  CHECK(o.reconnect_max == 900ms);
  CHECK(o.stall_timeout == 1500ms);
  CHECK(o.max_pending == 500);
  CHECK(!o.tls);

  const auto s = gatehouse::detail::parse_redis_options(
      json::parse(R"({"sentinel": {"addresses": ["10.0.0.1:26379", "[::1]:26379"], "master_name": "main"}})"), "/r", "r");
  CHECK(s.sentinel.addresses.size() == 2);
  CHECK(s.sentinel.master_name == "main");
}

TEST_CASE("redis and bans: mistakes are reported at their key") {
  auto j = base();
  j["redis"] = {{"main", {{"address", "nohost"}}}};
  CHECK(error_path(j) == "/redis/main/address");
  j["redis"] = {{"main", {{"adress", "127.0.0.1:6379"}}}};
  CHECK(error_path(j) == "/redis/main/adress");
  j["redis"] = {{"main", {{"address", "127.0.0.1:6379"}, {"sentinel", {{"addresses", {"127.0.0.1:26379"}}, {"master_name", "m"}}}}}};
  CHECK(error_path(j) == "/redis/main/address");
  j["redis"] = {{"main", {{"sentinel", {{"addresses", json::array()}, {"master_name", "m"}}}}}};
  CHECK(error_path(j) == "/redis/main/sentinel/addresses");
  j["redis"] = {{"main", {{"username", "u"}}}};
  CHECK(error_path(j) == "/redis/main/username");
  j["redis"] = {{"main", {{"timeout_ms", 0}}}};
  CHECK(error_path(j) == "/redis/main/timeout_ms");

  j = base();
  j["bans"] = {{"redis", "nowhere"}};
  CHECK(error_path(j) == "/bans/redis");
  j["bans"] = {{"weights", {{"waf_matches", 3}}}};
  CHECK(error_path(j) == "/bans/weights/waf_matches");
  j["bans"] = {{"allow", {"10.0.0.0/33"}}};
  CHECK(error_path(j) == "/bans/allow/0");
  j["bans"] = {{"ban_s", 600}, {"max_ban_s", 60}};
  CHECK(error_path(j) == "/bans/max_ban_s");
}

TEST_CASE("bans: the section builds a ban list that scores the security events") {
  auto j = base();
  j["bans"] = json::parse(R"({"threshold": 3, "weights": {"authentication_failure": 1}, "ban_s": 120,
                              "allow": ["10.0.0.0/8"]})");
  const auto config = load_config(j.dump());
  const auto& bans = config.options.bans;
  REQUIRE(bans);
  REQUIRE(config.options.security_events);  // made for the bans even without a section
  CHECK(bans->options().threshold == 3);
  CHECK(bans->options().ban_time == 120s);
  gatehouse::SecurityEvent e;
  e.kind = gatehouse::SecurityEventKind::authentication_failure;
  e.client_ip = asio::ip::make_address("203.0.113.5");
  for (int i = 0; i < 4; ++i) config.options.security_events->report(e);  // the score decays between events
  REQUIRE(config.options.security_events->flush());
  CHECK(bans->banned(asio::ip::make_address("203.0.113.5")));
  CHECK(bans->allowed(asio::ip::make_address("10.1.1.1")));
}
