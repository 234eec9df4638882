// The "metrics" section of the configuration file.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "gatehouse/config.hpp"
#include "config_error.hpp"

using gatehouse::ConfigError;
using gatehouse::load_config;
using nlohmann::json;

namespace {

using gatehouse::test::error_of;

json with_metrics(const json& metrics) {
  json doc = json::parse(R"({"listeners": [{"port": 8080}], "routes": [{"path": "/", "respond": {"status": 200}}]})");
  if (!metrics.is_null()) doc["metrics"] = metrics;
  return doc;
}

}  // namespace

TEST_CASE("config metrics: on by default, {\"enabled\": false} turns them off") {
  CHECK(load_config(with_metrics(nullptr).dump()).options.metrics.enabled);
  CHECK(load_config(with_metrics(json::object()).dump()).options.metrics.enabled);
  CHECK(load_config(with_metrics({{"enabled", true}}).dump()).options.metrics.enabled);
  CHECK_FALSE(load_config(with_metrics({{"enabled", false}}).dump()).options.metrics.enabled);
  CHECK_FALSE(load_config(with_metrics({{"enabled", false}}).dump()).options.metrics.registry);
}

TEST_CASE("config metrics: errors at the offending key") {
  CHECK(error_of(with_metrics({{"enabled", "yes"}})).path() == "/metrics/enabled");
  CHECK(error_of(with_metrics({{"path", "/metrics"}})).path() == "/metrics/path");
  CHECK(error_of(with_metrics(true)).path() == "/metrics");
}
