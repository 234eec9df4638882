// Load-balancing policies, weights and health keys of an upstream in the configuration file.
#include <doctest/doctest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "gatehouse/config.hpp"
#include "gatehouse/testing.hpp"

using gatehouse::ConfigError;
using gatehouse::load_config;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

json with_upstream(const json& upstream) {
  return json{{"listeners", {{{"port", 8080}}}},
              {"upstreams", {{"svc", upstream}}},
              {"routes", {{{"path", "/"}, {"upstream", "svc"}}}}};
}

std::shared_ptr<gatehouse::Upstream> upstream_of(const json& upstream) {
  return load_config(with_upstream(upstream).dump()).upstreams.at("svc");
}

ConfigError error_of(const json& upstream) {
  try {
    load_config(with_upstream(upstream).dump());
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("expected a ConfigError for: " << upstream.dump());
  return ConfigError("", "");
}

}  // namespace

TEST_CASE("config: endpoints with weights, health checks, outlier detection, panic and slow start") {
  const auto up = upstream_of(json::parse(R"({
    "endpoints": ["127.0.0.1:9001", {"address": "127.0.0.1:9002", "weight": 3}],
    "load_balancer": {"policy": "least_request", "choice_count": 3},
    "health_check": {"path": "/healthz", "host": "svc.internal", "expected_statuses": [200, "300-399"],
                     "interval_ms": 2000, "timeout_ms": 500, "jitter_percent": 20,
                     "healthy_threshold": 1, "unhealthy_threshold": 4},
    "outlier_detection": {"consecutive_5xx": 7, "consecutive_gateway_failures": 0, "base_ejection_time_ms": 1000,
                          "max_ejection_time_ms": 9000, "max_ejection_percent": 40},
    "panic_threshold_percent": 25,
    "slow_start_ms": 30000 })"));
  const auto& o = up->options();
  CHECK(o.endpoints == std::vector<std::string>{"127.0.0.1:9001", "127.0.0.1:9002"});
  CHECK(o.weights.at("127.0.0.1:9002") == 3);
  CHECK_FALSE(o.weights.contains("127.0.0.1:9001"));
  REQUIRE(o.health.active);
  const auto& a = *o.health.active;
  CHECK(a.kind == gatehouse::HealthCheckOptions::Kind::http);
  CHECK(a.path == "/healthz");
  CHECK(a.host == "svc.internal");
  CHECK(a.expected_statuses == std::vector<std::pair<unsigned, unsigned>>{{200, 200}, {300, 399}});
  CHECK(a.interval == 2000ms);
  CHECK(a.timeout == 500ms);
  CHECK(a.jitter == doctest::Approx(0.2));
  CHECK(a.healthy_threshold == 1);
  CHECK(a.unhealthy_threshold == 4);
  REQUIRE(o.health.outlier_detection);
  const auto& d = *o.health.outlier_detection;
  CHECK(d.consecutive_5xx == 7);
  CHECK(d.consecutive_gateway_failures == 0);
  CHECK(d.base_ejection_time == 1000ms);
  CHECK(d.max_ejection_time == 9000ms);
  CHECK(d.max_ejection_percent == 40);
  CHECK(o.health.panic_threshold_percent == 25);
  CHECK(o.health.slow_start == 30000ms);
  // The weights reach the endpoints the policies see, and the C++ view of their state.
  const auto states = up->endpoint_states();
  REQUIRE(states.size() == 2);
  CHECK(states[1].weight == 3);
  CHECK(states[1].usable());
}

TEST_CASE("config: every built-in policy by name, consistent hashing on each key source") {
  for (const char* policy : {"round_robin", "least_request", "random"}) {
    CAPTURE(policy);
    CHECK(upstream_of({{"endpoints", {"127.0.0.1:9001"}}, {"load_balancer", policy}}));
  }
  for (const char* key : {R"("client_address")", R"({"header": "x-user"})", R"({"cookie": "sid"})",
                          R"({"claim": "sub"})", R"({"claim": "/org/id"})"}) {
    CAPTURE(key);
    const json lb = json::parse(std::string(R"({"policy": "consistent_hash", "fallback": "least_request", "key": )") +
                                key + "}");
    CHECK(upstream_of({{"endpoints", {"127.0.0.1:9001"}}, {"load_balancer", lb}}));
  }
  const json tcp = json::parse(R"({"endpoints": ["127.0.0.1:9001"], "health_check": {"type": "tcp"}})");
  CHECK(upstream_of(tcp)->options().health.active->kind == gatehouse::HealthCheckOptions::Kind::tcp);
}

TEST_CASE("config: bad balancing and health keys are refused with their path") {
  const json ep = {"127.0.0.1:9001"};
  auto e = error_of({{"endpoints", {{{"address", "127.0.0.1:9001"}, {"weight", 0}}}}});
  CHECK(e.path() == "/upstreams/svc/endpoints/0/weight");
  e = error_of({{"endpoints", {{{"adress", "127.0.0.1:9001"}}}}});
  CHECK(e.path() == "/upstreams/svc/endpoints/0/adress");
  e = error_of({{"endpoints", {"127.0.0.1:9001", "127.0.0.1:9001"}}});
  CHECK(e.path() == "/upstreams/svc/endpoints/1");
  e = error_of({{"endpoints", ep}, {"load_balancer", {{"policy", "consistent_hash"}}}});
  CHECK(e.path() == "/upstreams/svc/load_balancer/key");
  e = error_of({{"endpoints", ep}, {"load_balancer", {{"policy", "consistent_hash"}, {"key", "sub"}}}});
  CHECK(e.path() == "/upstreams/svc/load_balancer/key");
  e = error_of({{"endpoints", ep},
                {"load_balancer", {{"policy", "consistent_hash"}, {"key", "client_address"}, {"table_size", 65536}}}});
  CHECK(e.path() == "/upstreams/svc/load_balancer/table_size");
  e = error_of({{"endpoints", ep},
                {"load_balancer", {{"policy", "consistent_hash"}, {"key", "client_address"}, {"fallback", "consistent_hash"}}}});
  CHECK(e.path() == "/upstreams/svc/load_balancer/fallback");
  e = error_of({{"endpoints", ep}, {"load_balancer", {{"policy", "least_request"}, {"choice_count", 0}}}});
  CHECK(e.path() == "/upstreams/svc/load_balancer/choice_count");
  e = error_of({{"endpoints", ep}, {"health_check", {{"path", "healthz"}}}});
  CHECK(e.path() == "/upstreams/svc/health_check/path");
  e = error_of({{"endpoints", ep}, {"health_check", {{"expected_statuses", {"299-200"}}}}});
  CHECK(e.path() == "/upstreams/svc/health_check/expected_statuses/0");
  e = error_of({{"endpoints", ep}, {"health_check", {{"type", "tcp"}, {"path", "/"}}}});
  CHECK(e.path() == "/upstreams/svc/health_check/path");
  e = error_of({{"endpoints", ep}, {"health_check", {{"type", "icmp"}}}});
  CHECK(e.path() == "/upstreams/svc/health_check/type");
  e = error_of({{"endpoints", ep}, {"outlier_detection", {{"base_ejection_time_ms", 5000}, {"max_ejection_time_ms", 1000}}}});
  CHECK(e.path() == "/upstreams/svc/outlier_detection/max_ejection_time_ms");
  e = error_of({{"endpoints", ep}, {"panic_threshold_percent", 101}});
  CHECK(e.path() == "/upstreams/svc/panic_threshold_percent");
}
