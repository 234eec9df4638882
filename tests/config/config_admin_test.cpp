// The "admin" section: defaults, the token from a file or the environment, TLS, and the checks
// that keep an admin listener from being exposed by mistake.
#include <doctest/doctest.h>

#include <stdlib.h>

#include <string>

#include <nlohmann/json.hpp>

#include "gatehouse/config.hpp"
#include "support/temp_dir.hpp"
#include "support/test_certs.hpp"

using gatehouse::ConfigError;
using gatehouse::load_config;
using nlohmann::json;

namespace {

json with_admin(const json& admin) {
  json j = json::parse(R"({
    "listeners": [ { "port": 8080 } ],
    "upstreams": { "users": { "endpoints": ["127.0.0.1:9001"] } },
    "routes": [ { "path": "/users", "upstream": "users" } ]
  })");
  j["admin"] = admin;
  return j;
}

ConfigError admin_error(const json& admin) {
  try {
    load_config(with_admin(admin).dump());
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("expected a ConfigError for admin " << admin.dump());
  return ConfigError("", "");
}

bool mentions(const ConfigError& e, const std::string& s) { return e.reason().find(s) != std::string::npos; }

constexpr const char* kToken = "c0ffee-c0ffee-c0ffee-c0ffee";

}  // namespace

TEST_CASE("config admin: defaults") {
  json j = with_admin(json::object());
  auto config = load_config(j.dump());
  REQUIRE(config.admin);
  CHECK(config.admin->address == "127.0.0.1");
  CHECK(config.admin->port == 9901);
  CHECK(config.admin->token.empty());
  CHECK_FALSE(config.admin->tls);
  j.erase("admin");
  CHECK_FALSE(load_config(j.dump()).admin);
}

TEST_CASE("config admin: the token comes from a file or the environment, trimmed, never quoted in errors") {
  gatehouse::test::TempDir dir;
  const std::string file = dir.file("admin-token", std::string(kToken) + "\n");
  auto config = load_config(with_admin({{"token_file", file}, {"port", 0}}).dump());
  REQUIRE(config.admin);
  CHECK(config.admin->token == kToken);
  CHECK(config.admin->port == 0);

  ::setenv("GATEHOUSE_TEST_ADMIN_TOKEN", kToken, 1);
  config = load_config(with_admin({{"token_env", "GATEHOUSE_TEST_ADMIN_TOKEN"}}).dump());
  CHECK(config.admin->token == kToken);
  ::unsetenv("GATEHOUSE_TEST_ADMIN_TOKEN");
  auto e = admin_error({{"token_env", "GATEHOUSE_TEST_ADMIN_TOKEN"}});
  CHECK(e.path() == "/admin/token_env");
  CHECK(mentions(e, "not set"));

  const std::string weak = dir.file("weak", "letmein\n");
  e = admin_error({{"token_file", weak}});
  CHECK(e.path() == "/admin/token_file");
  CHECK(mentions(e, "shorter than 16"));
  CHECK(std::string(e.what()).find("letmein") == std::string::npos);

  e = admin_error({{"token_file", dir.dir.string() + "/missing"}});
  CHECK(e.path() == "/admin/token_file");
  e = admin_error({{"token_file", file}, {"token_env", "X"}});
  CHECK(e.path() == "/admin/token_env");
}

TEST_CASE("config admin: a non-loopback address needs a token or client certificates") {
  auto e = admin_error({{"address", "0.0.0.0"}});
  CHECK(e.path() == "/admin/address");
  CHECK(mentions(e, "loopback"));
  gatehouse::test::TempDir dir;
  const std::string file = dir.file("admin-token", kToken);
  auto config = load_config(with_admin({{"address", "0.0.0.0"}, {"port", 9902}, {"token_file", file}}).dump());
  CHECK(config.admin->address == "0.0.0.0");
  config = load_config(with_admin({{"address", "::1"}}).dump());
  CHECK(config.admin->address == "::1");

  gatehouse::test::TestPki pki;
  const auto leaf = pki.issue("admin.test", {"admin.test"}, {"127.0.0.1"});
  config = load_config(with_admin({{"address", "10.1.2.3"},
                                   {"tls", {{"certificates", {{{"cert", leaf.cert_file}, {"key", leaf.key_file}}}},
                                            {"client_ca", pki.ca_cert}}}})
                           .dump());
  REQUIRE(config.admin->tls);
  CHECK(config.admin->tls->client_ca_file == pki.ca_cert);
  // TLS without client certificates is not enough on its own.
  e = admin_error({{"address", "10.1.2.3"},
                   {"tls", {{"certificates", {{{"cert", leaf.cert_file}, {"key", leaf.key_file}}}}}}});
  CHECK(e.path() == "/admin/address");
}

TEST_CASE("config admin: shape errors at their path") {
  CHECK(admin_error({{"adress", "127.0.0.1"}}).path() == "/admin/adress");
  CHECK(admin_error({{"address", "localhost"}}).path() == "/admin/address");
  CHECK(admin_error({{"port", 70000}}).path() == "/admin/port");
  CHECK(admin_error({{"token", kToken}}).path() == "/admin/token");  // never inline: token_file or token_env
  CHECK(admin_error({{"tls", {{"certificates", json::array()}}}}).path() == "/admin/tls/certificates");
  auto e = admin_error({{"port", 8080}});  // the public listener's port
  CHECK(e.path() == "/admin/port");
  CHECK(mentions(e, "/listeners/0"));
  CHECK_THROWS_AS(load_config(with_admin("yes").dump()), ConfigError);
}
