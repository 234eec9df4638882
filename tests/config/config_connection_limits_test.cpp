// A listener's connection limits in the configuration file.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "gatehouse/config.hpp"

using gatehouse::ConfigError;
using gatehouse::load_config;
using nlohmann::json;

namespace {

json with_listener(const json& extra) {
  json doc = json::parse(R"({"listeners": [{"port": 8080}], "routes": [{"path": "/", "respond": {"status": 200}}]})");
  for (const auto& [k, v] : extra.items()) doc["listeners"][0][k] = v;
  return doc;
}

std::string error_path(const json& doc) {
  try {
    load_config(doc.dump());
  } catch (const ConfigError& e) {
    return e.path();
  }
  FAIL("expected a ConfigError for: " << doc.dump());
  return {};
}

}  // namespace

TEST_CASE("config listeners: max_connections and max_connections_per_client") {
  const auto none = load_config(with_listener(json::object()).dump());
  CHECK(none.listeners[0].max_connections == 0);
  CHECK(none.listeners[0].max_connections_per_client == 0);
  const auto set = load_config(with_listener({{"max_connections", 20000}, {"max_connections_per_client", 64}}).dump());
  CHECK(set.listeners[0].max_connections == 20000);
  CHECK(set.listeners[0].max_connections_per_client == 64);
  CHECK(error_path(with_listener({{"max_connections", -1}})) == "/listeners/0/max_connections");
  CHECK(error_path(with_listener({{"max_connections_per_client", "10"}})) == "/listeners/0/max_connections_per_client");
  CHECK(error_path(with_listener({{"max_connection", 10}})) == "/listeners/0/max_connection");
}
