// Loading a configuration again with the previous one (a reload): objects whose definition is
// unchanged are the same objects, anything whose JSON or named files changed is built anew.
#include <doctest/doctest.h>

#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "gatehouse/config.hpp"
#include "support/temp_dir.hpp"
#include "support/test_certs.hpp"

using gatehouse::ConfigRegistries;
using gatehouse::GatewayConfig;
using gatehouse::load_config;
using nlohmann::json;

namespace {

json api_key_entry(const std::string& keys_file) {
  json entry = json::object();
  entry["type"] = "api_keys";
  entry["keys_file"] = keys_file;
  return entry;
}

// {"keys": entry}
json verifiers_with(const json& entry) {
  json v = json::object();
  v["keys"] = entry;
  return v;
}

std::string keys_json(const std::string& principal) {
  json key = json::object();
  key["sha256"] = std::string(64, 'a');
  key["principal"] = principal;
  return json::array({key}).dump();
}

json document(const json& verifiers, const json& upstream, const std::string& access_log) {
  json doc = json::parse(R"({
    "listeners": [{"port": 8080}],
    "routes": [{"path": "/", "upstream": "svc",
                "middleware": [{"name": "authenticate", "options": {"verifiers": ["keys"]}}]}]})");
  doc["upstreams"]["svc"] = upstream;
  doc["verifiers"] = verifiers;
  doc["middleware"] = json::array({{{"name", "access_log"}, {"options", {{"path", access_log}}}}});
  return doc;
}

}  // namespace

TEST_CASE("config reload: unchanged entries are kept, changed ones rebuilt, with the objects that name them") {
  gatehouse::test::TempDir dir;
  const std::string keys = dir.file("keys.json", keys_json("alice"));
  const std::string log = dir.file("access.log", "");
  const json upstream = json::parse(R"({"endpoints": ["127.0.0.1:9001"]})");
  const ConfigRegistries registries;

  const GatewayConfig first = load_config(document(verifiers_with(api_key_entry(keys)), upstream, log).dump(), registries);
  REQUIRE(first.reuse);

  SUBCASE("the same document: every object is kept") {
    const GatewayConfig again =
        load_config(document(verifiers_with(api_key_entry(keys)), upstream, log).dump(), registries, first);
    CHECK(again.upstreams.at("svc") == first.upstreams.at("svc"));
    CHECK(again.context.verifiers.at("keys") == first.context.verifiers.at("keys"));
    CHECK(again.middleware.at(0) == first.middleware.at(0));  // the access log keeps its file
    CHECK(again.routes.at(0).middleware.at(0) == first.routes.at(0).middleware.at(0));
    // Routes are always new values, pointing at the kept upstream.
    CHECK(again.routes.at(0).origin.upstream() == first.upstreams.at("svc"));
  }

  SUBCASE("the access log's file grew: still the same definition") {
    dir.file("access.log", "{\"line\":1}\n");
    const GatewayConfig again =
        load_config(document(verifiers_with(api_key_entry(keys)), upstream, log).dump(), registries, first);
    CHECK(again.middleware.at(0) == first.middleware.at(0));
  }

  SUBCASE("a key file replaced under the same name: the verifier and the middleware naming it are rebuilt") {
    dir.file("keys.json", keys_json("bob"));
    const GatewayConfig again =
        load_config(document(verifiers_with(api_key_entry(keys)), upstream, log).dump(), registries, first);
    CHECK(again.context.verifiers.at("keys") != first.context.verifiers.at("keys"));
    CHECK(again.routes.at(0).middleware.at(0) != first.routes.at(0).middleware.at(0));
    CHECK(again.upstreams.at("svc") == first.upstreams.at("svc"));
    CHECK(again.middleware.at(0) == first.middleware.at(0));
  }

  SUBCASE("an upstream whose definition changed is a new upstream") {
    json changed = upstream;
    changed["connect_timeout_ms"] = 500;
    const GatewayConfig again =
        load_config(document(verifiers_with(api_key_entry(keys)), changed, log).dump(), registries, first);
    CHECK(again.upstreams.at("svc") != first.upstreams.at("svc"));
    CHECK(again.context.verifiers.at("keys") == first.context.verifiers.at("keys"));
  }

  SUBCASE("chained reloads keep comparing with the configuration just replaced") {
    json changed = upstream;
    changed["connect_timeout_ms"] = 500;
    const GatewayConfig second =
        load_config(document(verifiers_with(api_key_entry(keys)), changed, log).dump(), registries, first);
    const GatewayConfig third =
        load_config(document(verifiers_with(api_key_entry(keys)), changed, log).dump(), registries, second);
    CHECK(third.upstreams.at("svc") == second.upstreams.at("svc"));
    CHECK(third.context.verifiers.at("keys") == first.context.verifiers.at("keys"));
  }
}

TEST_CASE("config reload: an upstream's CA bundle replaced under the same name is a change") {
  gatehouse::test::TestPki one("first CA"), two("second CA");
  gatehouse::test::TempDir dir;
  const std::string ca = dir.file("ca.pem", "");
  std::filesystem::copy_file(one.ca_cert, ca, std::filesystem::copy_options::overwrite_existing);
  json doc = json::parse(R"({"listeners": [{"port": 8080}], "routes": [{"path": "/", "upstream": "svc"}],
                              "upstreams": {"svc": {"endpoints": ["127.0.0.1:9001"], "tls": {}}}})");
  doc["upstreams"]["svc"]["tls"]["ca"] = ca;
  const ConfigRegistries registries;
  const GatewayConfig first = load_config(doc.dump(), registries);
  const GatewayConfig same = load_config(doc.dump(), registries, first);
  CHECK(same.upstreams.at("svc") == first.upstreams.at("svc"));
  std::filesystem::copy_file(two.ca_cert, ca, std::filesystem::copy_options::overwrite_existing);
  const GatewayConfig rotated = load_config(doc.dump(), registries, same);
  CHECK(rotated.upstreams.at("svc") != first.upstreams.at("svc"));
}
