// "retry" (upstream and route) and "circuit_breaker" in the configuration file: the keys map onto
// the policy and limits, and a mistake is refused at its JSON path with the reason.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "gatehouse/config.hpp"
#include "gatehouse/testing.hpp"
#include "config_error.hpp"

using gatehouse::ConfigError;
using gatehouse::load_config;
using nlohmann::json;
using namespace gatehouse;

namespace {

using gatehouse::test::error_of;

json with_upstream(const json& extra) {
  json j = json::parse(R"({
    "listeners": [ { "port": 8080 } ],
    "upstreams": { "users": { "endpoints": ["127.0.0.1:9001", "127.0.0.1:9002"] } },
    "routes": [ { "path": "/users", "upstream": "users" } ]
  })");
  for (auto& [k, v] : extra.items()) j["upstreams"]["users"][k] = v;
  return j;
}

}  // namespace

TEST_CASE("config: an upstream's retry and circuit_breaker map onto its policy and limits") {
  const auto c = load_config(with_upstream(json::parse(R"({
    "retry": { "attempts": 3, "on": ["connect_failure", "timeout", 503, "429"], "methods": ["GET", "PUT"],
               "per_try_timeout_ms": 800, "backoff": { "base_ms": 10, "max_ms": 100 },
               "budget": { "percent": 25.5, "min_concurrency": 2 }, "replay_body_bytes": 1024 },
    "circuit_breaker": { "max_connections": 10, "max_pending_requests": 5, "max_requests": 20, "max_retries": 4 }
  })")).dump());
  const auto& up = *c.upstreams.at("users");
  const auto* p = dynamic_cast<const StandardRetryPolicy*>(up.options().retry_policy.get());
  REQUIRE(p);
  const RetryOptions& r = p->options();
  CHECK(r.attempts == 3);
  CHECK(r.on_connect_failure);
  CHECK(r.on_timeout);
  CHECK_FALSE(r.on_reset);
  CHECK(p->retries_status(503));
  CHECK(p->retries_status(429));
  CHECK_FALSE(p->retries_status(502));
  CHECK(r.methods == std::vector<std::string>{"GET", "PUT"});
  CHECK(r.per_try_timeout == std::chrono::milliseconds(800));
  CHECK(r.backoff.base == std::chrono::milliseconds(10));
  CHECK(r.backoff.max == std::chrono::milliseconds(100));
  REQUIRE(r.budget);
  CHECK(r.budget->percent == 25.5);
  CHECK(r.budget->min_concurrency == 2);
  CHECK(r.replay_body_bytes == 1024);
  const CircuitBreakerLimits& l = up.options().circuit_breaker;
  CHECK(l.max_connections == 10);
  CHECK(l.max_pending_requests == 5);
  CHECK(l.max_requests == 20);
  CHECK(l.max_retries == 4);
  CHECK(up.circuit_breaker().limits.max_requests == 20);
}

TEST_CASE("config: retry defaults, shorthands, and a route's own retry") {
  json j = with_upstream(json::parse(R"({ "retry": { "on": ["gateway_error", "5xx"], "idempotent_only": false,
                                                     "budget": false } })"));
  j["routes"].push_back(json::parse(R"({ "path": "/slow", "upstream": "users", "retry": { "attempts": 1 } })"));
  const auto c = load_config(j.dump());
  const auto* p = dynamic_cast<const StandardRetryPolicy*>(c.upstreams.at("users")->options().retry_policy.get());
  REQUIRE(p);
  CHECK(p->options().attempts == 2);
  CHECK(p->retries_status(500));
  CHECK(p->retries_status(599));
  CHECK(p->options().methods == std::vector<std::string>{"*"});
  CHECK_FALSE(p->options().budget);
  CHECK(c.routes[0].retry_policy == nullptr);  // the upstream's
  const auto* route = dynamic_cast<const StandardRetryPolicy*>(c.routes[1].retry_policy.get());
  REQUIRE(route);
  CHECK(route->options().attempts == 1);
  // Without "retry": the connect-retry policy and Envoy's default limits.
  const auto plain = load_config(with_upstream(json::object()).dump());
  CHECK(dynamic_cast<const StandardRetryPolicy*>(plain.upstreams.at("users")->options().retry_policy.get()) == nullptr);
  CHECK(plain.upstreams.at("users")->options().circuit_breaker.max_requests == 1024);
}

TEST_CASE("config: retry and circuit_breaker mistakes are refused at their path") {
  auto e = error_of(with_upstream(json::parse(R"({ "retry": { "attempts": 0 } })")));
  CHECK(e.path() == "/upstreams/users/retry/attempts");
  e = error_of(with_upstream(json::parse(R"({ "retry": { "on": ["connect_failure", "teapot"] } })")));
  CHECK(e.path() == "/upstreams/users/retry/on/1");
  e = error_of(with_upstream(json::parse(R"({ "retry": { "on": [200] } })")));
  CHECK(e.path() == "/upstreams/users/retry/on/0");
  e = error_of(with_upstream(json::parse(R"({ "retry": { "methods": ["get"] } })")));
  CHECK(e.path() == "/upstreams/users/retry/methods/0");
  e = error_of(with_upstream(json::parse(R"({ "retry": { "methods": ["GET"], "idempotent_only": true } })")));
  CHECK(e.path() == "/upstreams/users/retry/idempotent_only");
  e = error_of(with_upstream(json::parse(R"({ "retry": { "backoff": { "base_ms": 100, "max_ms": 10 } } })")));
  CHECK(e.path() == "/upstreams/users/retry/backoff/max_ms");
  e = error_of(with_upstream(json::parse(R"({ "retry": { "budget": { "percent": 120 } } })")));
  CHECK(e.path() == "/upstreams/users/retry/budget/percent");
  e = error_of(with_upstream(json::parse(R"({ "retry": { "atempts": 2 } })")));
  CHECK(e.path() == "/upstreams/users/retry/atempts");
  CHECK(e.reason().find("did you mean \"attempts\"") != std::string::npos);
  e = error_of(with_upstream(json::parse(R"({ "retry": {}, "connect_retries": 2 })")));
  CHECK(e.path() == "/upstreams/users/connect_retries");
  e = error_of(with_upstream(json::parse(R"({ "circuit_breaker": { "max_requests": 0 } })")));
  CHECK(e.path() == "/upstreams/users/circuit_breaker/max_requests");
  e = error_of(with_upstream(json::parse(R"({ "circuit_breaker": { "max_conections": 5 } })")));
  CHECK(e.path() == "/upstreams/users/circuit_breaker/max_conections");
  json j = with_upstream(json::object());
  j["routes"].push_back(json::parse(R"({ "path": "/h", "respond": { "status": 200 }, "retry": {} })"));
  e = error_of(j);
  CHECK(e.path() == "/routes/1/retry");
}
