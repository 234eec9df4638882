// Listener names, listener-bound routes, "token_minters", "mint_identity_token" and "jwks" routes.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/auth/key_source.hpp"
#include "gatehouse/auth/token_minter.hpp"
#include "gatehouse/config.hpp"
#include "gatehouse/middleware/mint_identity_token.hpp"
#include "gatehouse/testing.hpp"
#include "support/jwt_signer.hpp"
#include "support/temp_dir.hpp"

using gatehouse::ConfigError;
using gatehouse::load_config;
using nlohmann::json;
namespace fs = std::filesystem;
namespace gt = gatehouse::testing;

namespace {

using gatehouse::test::TempDir;

std::string private_pem(const char* type, const char* curve = nullptr) {
  EVP_PKEY* k = curve ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, curve) : EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  REQUIRE(k);
  std::unique_ptr<BIO, int (*)(BIO*)> bio(BIO_new(BIO_s_mem()), BIO_free);
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  EVP_PKEY_free(k);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// Two listeners (public, admin), one upstream, a minter, and routes to which tests add.
json document() {
  return json::parse(R"({
    "listeners": [ { "name": "public", "port": 8080 }, { "name": "admin", "port": 9090 } ],
    "upstreams": { "svc": { "endpoints": ["127.0.0.1:9001"] } },
    "token_minters": { "internal": { "issuer": "https://gatehouse.internal", "audience": "svc" } },
    "routes": [ { "name": "api", "path": "/api", "upstream": "svc" } ]
  })");
}

std::pair<std::string, std::string> error_of(const json& doc) {
  try {
    load_config(doc.dump());
  } catch (const ConfigError& e) {
    return {e.path(), e.reason()};
  }
  FAIL("no ConfigError for " << doc.dump());
  return {};
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("listener names and listener-bound routes") {
  json doc = document();
  doc["routes"].push_back({{"name", "admin"}, {"path", "/admin"}, {"listeners", {"admin"}},
                           {"respond", {{"status", 200}, {"body", "admin\n"}}}});
  const auto config = load_config(doc.dump());
  REQUIRE(config.listeners.size() == 2);
  CHECK(config.listeners[0].name == "public");
  CHECK(config.listeners[1].name == "admin");
  CHECK(config.routes[0].listeners.empty());
  CHECK(config.routes[1].listeners == std::vector<std::string>{"admin"});

  auto with = [&](auto edit) {
    json d = document();
    edit(d);
    return error_of(d);
  };
  auto [path, reason] = with([](json& d) { d["routes"][0]["listeners"] = {"public", "admn"}; });
  CHECK(path == "/routes/0/listeners/1");
  CHECK(contains(reason, "unknown listener \"admn\" (did you mean \"admin\"?); named listeners: public, admin"));
  std::tie(path, reason) = with([](json& d) {
    d["listeners"] = json::parse(R"([{"port": 8080}])");
    d["routes"][0]["listeners"] = {"admin"};
  });
  CHECK(path == "/routes/0/listeners/0");
  CHECK(contains(reason, "named listeners: none"));
  std::tie(path, reason) = with([](json& d) { d["routes"][0]["listeners"] = json::array(); });
  CHECK(path == "/routes/0/listeners");
  CHECK(contains(reason, "at least one listener name"));
  std::tie(path, reason) = with([](json& d) { d["routes"][0]["listeners"] = {"admin", "admin"}; });
  CHECK(path == "/routes/0/listeners/1");
  CHECK(contains(reason, "duplicate listener \"admin\""));
  std::tie(path, reason) = with([](json& d) { d["routes"][0]["listeners"] = "admin"; });
  CHECK(path == "/routes/0/listeners");
  std::tie(path, reason) = with([](json& d) { d["listeners"][1]["name"] = "public"; });
  CHECK(path == "/listeners/1/name");
  CHECK(contains(reason, "duplicate listener name \"public\" (also /listeners/0)"));
  std::tie(path, reason) = with([](json& d) { d["listeners"][0]["name"] = ""; });
  CHECK(path == "/listeners/0/name");
  CHECK(contains(reason, "must not be empty"));
  std::tie(path, reason) = with([](json& d) { d["listeners"][0]["nmae"] = "x"; });
  CHECK(path == "/listeners/0/nmae");
  CHECK(contains(reason, "did you mean \"name\""));
}

TEST_CASE("token minters: defaults, key files and errors at the offending key") {
  TempDir tmp;
  json doc = document();
  doc["token_minters"]["ed"] = {{"alg", "EdDSA"}, {"key_file", tmp.file("ed.pem", private_pem("ED25519"))},
                                {"issuer", "https://gw"}, {"lifetime_s", 300}, {"copy_claims", {"sub", "tenant"}},
                                {"not_before", true}, {"cache", false}};
  const auto config = load_config(doc.dump());
  REQUIRE(config.context.token_minters.size() == 2);
  const auto& internal = *config.context.token_minters.at("internal");
  CHECK(internal.options().algorithm == "ES256");
  CHECK(internal.options().lifetime == std::chrono::seconds(60));
  CHECK(internal.options().copy_claims == std::vector<std::string>{"sub", "scope"});
  CHECK(internal.options().audience == "svc");
  CHECK(internal.options().cache);
  const auto& ed = *config.context.token_minters.at("ed");
  CHECK(ed.algorithm() == gatehouse::auth::JwsAlgorithm::eddsa);
  CHECK(ed.options().lifetime == std::chrono::seconds(300));
  CHECK(ed.options().copy_claims == std::vector<std::string>{"sub", "tenant"});
  CHECK(ed.options().not_before);
  CHECK_FALSE(ed.options().cache);
  // The same key file gives the same kid on every load (a generated key would not).
  CHECK(load_config(doc.dump()).context.token_minters.at("ed")->kid() == ed.kid());
  CHECK(load_config(doc.dump()).context.token_minters.at("internal")->kid() != internal.kid());

  auto with = [&](auto edit) {
    json d = document();
    edit(d["token_minters"]["internal"]);
    return error_of(d);
  };
  const std::string at = "/token_minters/internal";
  auto [path, reason] = with([](json& m) { m.erase("issuer"); });
  CHECK(path == at + "/issuer");
  CHECK(contains(reason, "missing required key \"issuer\""));
  std::tie(path, reason) = with([](json& m) { m["alg"] = "ES265"; });
  CHECK(path == at + "/alg");
  CHECK(contains(reason, "did you mean \"ES256\""));
  std::tie(path, reason) = with([](json& m) { m["alg"] = "RS256"; });
  CHECK(path == at + "/alg");
  std::tie(path, reason) = with([](json& m) { m["lifetime_s"] = 0; });
  CHECK(path == at + "/lifetime_s");
  CHECK(contains(reason, "1..3600"));
  std::tie(path, reason) = with([](json& m) { m["lifetime_s"] = 3601; });
  CHECK(path == at + "/lifetime_s");
  std::tie(path, reason) = with([](json& m) { m["lifetime"] = 30; });
  CHECK(path == at + "/lifetime");
  CHECK(contains(reason, "did you mean \"lifetime_s\""));
  std::tie(path, reason) = with([](json& m) { m["copy_claims"] = {"sub", "exp"}; });
  CHECK(path == at + "/copy_claims/1");
  CHECK(contains(reason, "set by the minter"));
  std::tie(path, reason) = with([](json& m) { m["copy_claims"] = {"sub", "sub"}; });
  CHECK(path == at + "/copy_claims/1");
  std::tie(path, reason) = with([&](json& m) { m["key_file"] = (tmp.dir / "absent.pem").string(); });
  CHECK(path == at + "/key_file");
  CHECK(contains(reason, "cannot read"));
  std::tie(path, reason) = with([&](json& m) { m["key_file"] = tmp.file("p384.pem", private_pem("EC", "P-384")); });
  CHECK(path == at + "/key_file");
  CHECK(contains(reason, "ES256 needs a P-256 EC key"));
  std::tie(path, reason) = with([&](json& m) { m["key_file"] = tmp.file("garbage.pem", "not a key\n"); });
  CHECK(path == at + "/key_file");
  CHECK(contains(reason, "no PEM private key"));
  json d = document();
  d["token_minters"][""] = {{"issuer", "x"}};
  CHECK(error_of(d).first == "/token_minters/");
}

TEST_CASE("mint_identity_token and jwks routes name a minter") {
  json doc = document();
  doc["routes"][0]["middleware"] = {{{"name", "mint_identity_token"}, {"options", {{"minter", "internal"}}}}};
  doc["routes"].push_back({{"name", "jwks"}, {"path", "/.well-known/jwks.json"}, {"prefix", false},
                           {"methods", {"GET", "HEAD"}}, {"listeners", {"admin"}}, {"jwks", "internal"}});
  const auto config = load_config(doc.dump());
  const auto& minter = config.context.token_minters.at("internal");
  const auto* mint = dynamic_cast<const gatehouse::MintIdentityToken*>(config.routes[0].middleware.at(0).get());
  REQUIRE(mint);
  CHECK(mint->options().minter == minter);
  CHECK(mint->options().header == "x-gatehouse-identity");
  const auto& jwks = config.routes[1];
  REQUIRE(jwks.origin.handler());
  CHECK_FALSE(jwks.origin.upstream());
  auto ex = gt::exchange("GET", "/.well-known/jwks.json");
  auto f = gt::run(jwks.origin.handler()(ex));
  REQUIRE(f.is_response());
  CHECK(f.response().body() == minter->jwks_json());

  auto with = [&](auto edit) {
    json d = document();
    d["routes"][0]["middleware"] = {{{"name", "mint_identity_token"}, {"options", {{"minter", "internal"}}}}};
    edit(d);
    return error_of(d);
  };
  const std::string opts = "/routes/0/middleware/0/options";
  auto [path, reason] = with([](json& d) { d["routes"][0]["middleware"][0]["options"]["minter"] = "internl"; });
  CHECK(path == opts + "/minter");
  CHECK(contains(reason, "unknown token minter \"internl\" (did you mean \"internal\"?)"));
  std::tie(path, reason) = with([](json& d) { d["routes"][0]["middleware"][0]["options"].erase("minter"); });
  CHECK(path == opts + "/minter");
  std::tie(path, reason) = with([](json& d) { d["routes"][0]["middleware"][0]["options"]["header"] = "x bad"; });
  CHECK(path == opts + "/header");
  std::tie(path, reason) = with([](json& d) {
    d.erase("token_minters");
  });
  CHECK(path == opts + "/minter");
  CHECK(contains(reason, "defines none"));
  std::tie(path, reason) = with([](json& d) { d["routes"].push_back({{"path", "/k"}, {"jwks", "nope"}}); });
  CHECK(path == "/routes/1/jwks");
  CHECK(contains(reason, "unknown token minter \"nope\""));
  std::tie(path, reason) = with([](json& d) { d["routes"].push_back({{"path", "/k"}, {"jwks", "internal"}, {"upstream", "svc"}}); });
  CHECK(path == "/routes/1/jwks");
  CHECK(contains(reason, "exactly one of \"upstream\", \"respond\" and \"jwks\""));
  std::tie(path, reason) = with([](json& d) { d["routes"].push_back({{"path", "/k"}}); });
  CHECK(path == "/routes/1");
  std::tie(path, reason) = with([](json& d) { d["routes"].push_back({{"path", "/k"}, {"jwks", "internal"}, {"rewrite_prefix", "/x"}}); });
  CHECK(path == "/routes/1/rewrite_prefix");
}

TEST_CASE("from the configuration: authenticate, then mint_identity_token; the service verifies the result") {
  TempDir tmp;
  const auto key = gatehouse::test::TestKey::generate("ES256");
  json doc = document();
  doc["routes"][0]["middleware"] = {
      {{"name", "authenticate"},
       {"options", {{"issuers", {{{"issuer", "https://id.test"}, {"jwks_file", tmp.file("jwks.json", key.jwks("k1").dump())}}}},
                    {"algorithms", {"ES256"}},
                    {"optional", true}}}},
      {{"name", "mint_identity_token"}, {"options", {{"minter", "internal"}, {"header", "x-identity"}}}}};
  const auto config = load_config(doc.dump());
  const auto& chain = config.routes[0].middleware;
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string token = gatehouse::test::make_token(
      key, {{"alg", "ES256"}, {"kid", "k1"}}, {{"iss", "https://id.test"}, {"sub", "dave"}, {"exp", now + 60}});
  auto ex = gt::exchange("GET", "/api", {{"authorization", "Bearer " + token}, {"X-Identity", "forged"}});
  gt::FakeUpstream up;
  CHECK(gt::run_chain(chain, ex, &up).status == 200);
  REQUIRE(up.received().size() == 1);
  REQUIRE(up.received()[0].headers.count("x-identity") == 1);

  gatehouse::auth::JwtVerifierOptions vo;
  vo.algorithms = {"ES256"};
  vo.issuers = {{"https://gatehouse.internal",
                 gatehouse::auth::StaticKeySource::from_jwks(config.context.token_minters.at("internal")->jwks_json())}};
  vo.audiences = {"svc"};
  const auto r = gatehouse::auth::JwtVerifier(std::move(vo)).try_verify_now(*up.received()[0].headers.get("x-identity"));
  REQUIRE(r);
  REQUIRE(r->ok());
  CHECK(r->value().subject() == "dave");

  auto anonymous = gt::exchange("GET", "/api", {{"x-identity", "forged"}});
  CHECK(gt::run_chain(chain, anonymous, &up).status == 200);
  REQUIRE(up.received().size() == 2);
  CHECK_FALSE(up.received()[1].headers.contains("x-identity"));
}
