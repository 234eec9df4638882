#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/api_key_verifier.hpp"
#include "gatehouse/auth/claims.hpp"
#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/config.hpp"
#include "gatehouse/middleware/authenticate.hpp"
#include "gatehouse/middleware/authorize.hpp"
#include "gatehouse/testing.hpp"
#include "support/jwt_signer.hpp"
#include "support/temp_dir.hpp"

using gatehouse::ConfigError;
using gatehouse::load_config;
using gatehouse::test::TestKey;
using nlohmann::json;
namespace fs = std::filesystem;
namespace gt = gatehouse::testing;

namespace {

struct KeyFiles {
  gatehouse::test::TempDir tmp;
  const fs::path& dir = tmp.dir;
  TestKey rsa = TestKey::generate("RS256");
  std::string jwks_file = tmp.file("jwks.json", rsa.jwks("k1").dump());
  std::string pem_file = tmp.file("key.pem", rsa.public_pem());
  json authenticate() const {
    return {{"issuers", {{{"issuer", "https://id.test"}, {"jwks_file", jwks_file}}}},
            {"algorithms", {"RS256"}},
            {"audiences", {"api"}}};
  }
};

// A document whose one route runs `chain`.
std::string document(const json& chain) {
  json doc = {{"listeners", {{{"port", 8080}}}},
              {"upstreams", {{"svc", {{"endpoints", {"127.0.0.1:9001"}}}}}},
              {"routes", {{{"path", "/"}, {"upstream", "svc"}, {"middleware", chain}}}}};
  return doc.dump();
}

json authenticate_entry(const json& options) { return {{"name", "authenticate"}, {"options", options}}; }
json authorize_entry(const json& options) { return {{"name", "authorize"}, {"options", options}}; }

const std::string kOptions = "/routes/0/middleware/0/options";

std::pair<std::string, std::string> error_of(const json& chain) {
  try {
    load_config(document(chain));
  } catch (const ConfigError& e) {
    return {e.path(), e.reason()};
  }
  FAIL("no ConfigError");
  return {};
}

std::string path_of(const json& authenticate_options) {
  return error_of(json::array({authenticate_entry(authenticate_options)})).first;
}

}  // namespace

TEST_CASE("authenticate and authorize build from the configuration and work together") {
  KeyFiles k;
  json auth = k.authenticate();
  auth["issuers"].push_back({{"issuer", "https://pem.test"}, {"pem_file", k.pem_file}});
  auth["issuers"].push_back({{"issuer", "https://inline.test"}, {"jwks", k.rsa.jwks("k2")}});
  auth["credential"] = {{"header", "authorization"}};
  auth["realm"] = "orders";
  auth["leeway_s"] = 10;
  auth["required_claims"] = {"tenant"};
  auth["identity"] = {{"subject", "x-user"}, {"scopes", ""}, {"claims", {{"tenant", "x-tenant"}}}};
  auth["forward_token"] = false;
  const json authz = {{"scopes", {"orders:read"}}, {"claims", {{{"claim", "tenant"}, {"in", {"acme", "globex"}}}}}};
  const auto config = load_config(document({authenticate_entry(auth), authorize_entry(authz)}));
  const auto& chain = config.routes.at(0).middleware;
  REQUIRE(chain.size() == 2);
  const auto* a = dynamic_cast<const gatehouse::Authenticate*>(chain[0].get());
  REQUIRE(a);
  CHECK(a->options().realm == "orders");
  CHECK(a->options().identity.scopes.empty());
  CHECK_FALSE(a->options().forward_token);
  REQUIRE(dynamic_cast<const gatehouse::Authorize*>(chain[1].get()));

  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  auto token = [&](const std::string& iss, const std::string& kid, const std::string& scope) {
    json header = {{"alg", "RS256"}};
    if (!kid.empty()) header["kid"] = kid;
    return gatehouse::test::make_token(k.rsa, header,
                                       {{"iss", iss}, {"aud", "api"}, {"sub", "alice"}, {"exp", now + 600},
                                        {"scope", scope}, {"tenant", "acme"}});
  };
  for (const auto& [iss, kid] : std::vector<std::pair<std::string, std::string>>{
           {"https://id.test", "k1"}, {"https://pem.test", ""}, {"https://inline.test", "k2"}}) {
    CAPTURE(iss);
    auto ex = gt::exchange("GET", "/", {{"authorization", "Bearer " + token(iss, kid, "orders:read")}});
    gt::FakeUpstream up;
    auto r = gt::run_chain(chain, ex, &up);
    CHECK(r.status == 200);
    REQUIRE(up.received().size() == 1);
    CHECK(up.received()[0].headers.get("x-user") == "alice");
    CHECK(up.received()[0].headers.get("x-tenant") == "acme");
    CHECK_FALSE(up.received()[0].headers.contains("authorization"));
  }
  auto ex = gt::exchange("GET", "/", {{"authorization", "Bearer " + token("https://id.test", "k1", "other")}});
  CHECK(gt::run_chain(chain, ex).status == 403);
}

TEST_CASE("authenticate option errors point at the offending key") {
  KeyFiles k;
  auto with = [&](auto edit) {
    json o = k.authenticate();
    edit(o);
    return path_of(o);
  };
  CHECK(with([](json& o) { o.erase("algorithms"); }) == kOptions + "/algorithms");
  CHECK(with([](json& o) { o["algorithms"] = json::array(); }) == kOptions + "/algorithms");
  CHECK(with([](json& o) { o["algorithms"] = {"RS256", "none"}; }) == kOptions + "/algorithms/1");
  CHECK(with([](json& o) { o["algorithms"] = {"RS256", "RS256"}; }) == kOptions + "/algorithms/1");
  CHECK(with([](json& o) { o["algorithms"] = {"ES256"}; }) == kOptions + "/issuers/0/jwks_file");
  CHECK(with([](json& o) { o.erase("issuers"); }) == kOptions + "/issuers");
  CHECK(with([](json& o) { o["issuers"] = json::array(); }) == kOptions + "/issuers");
  CHECK(with([](json& o) { o["issuers"][0].erase("jwks_file"); }) == kOptions + "/issuers/0");
  CHECK(with([](json& o) { o["issuers"][0].erase("issuer"); }) == kOptions + "/issuers/0/issuer");
  CHECK(with([](json& o) { o["issuers"][0]["jwks"] = json::object(); }) == kOptions + "/issuers/0/jwks");
  CHECK(with([&](json& o) { o["issuers"][0]["jwks_file"] = (k.dir / "missing.json").string(); }) ==
        kOptions + "/issuers/0/jwks_file");
  CHECK(with([](json& o) { o["issuers"][0] = {{"issuer", "x"}, {"jwks", {{"keys", "no"}}}}; }) ==
        kOptions + "/issuers/0/jwks");
  CHECK(with([](json& o) { o["issuers"].push_back(o["issuers"][0]); }) == kOptions + "/issuers/1/issuer");
  CHECK(with([](json& o) { o["issuers"][0]["jwks_url"] = "https://x"; }) == kOptions + "/issuers/0/jwks_url");
  CHECK(with([](json& o) { o["audience"] = "api"; }) == kOptions + "/audience");
  CHECK(with([](json& o) { o["audiences"] = {""}; }) == kOptions + "/audiences/0");
  CHECK(with([](json& o) { o["leeway_s"] = -1; }) == kOptions + "/leeway_s");
  CHECK(with([](json& o) { o["leeway_s"] = 1.5; }) == kOptions + "/leeway_s");
  CHECK(with([](json& o) { o["required_claims"] = {1}; }) == kOptions + "/required_claims/0");
  CHECK(with([](json& o) { o["credential"] = {{"header", "authorization"}, {"query", "t"}}; }) ==
        kOptions + "/credential/query");
  CHECK(with([](json& o) { o["credential"] = json::object(); }) == kOptions + "/credential");
  CHECK(with([](json& o) { o["credential"] = {{"header", "bad header"}}; }) == kOptions + "/credential/header");
  CHECK(with([](json& o) { o["credential"] = {{"cookie", "a;b"}}; }) == kOptions + "/credential/cookie");
  CHECK(with([](json& o) { o["realm"] = "say \"hi\""; }) == kOptions + "/realm");
  CHECK(with([](json& o) { o["optional"] = "yes"; }) == kOptions + "/optional");
  CHECK(with([](json& o) { o["fail_open_when_unavailable"] = 1; }) == kOptions + "/fail_open_when_unavailable");
  CHECK(with([](json& o) { o["forward_token"] = nullptr; }) == kOptions + "/forward_token");
  CHECK(with([](json& o) { o["identity"] = {{"subject", "Authorization"}}; }) == kOptions + "/identity/subject");
  CHECK(with([](json& o) { o["identity"] = {{"claims", {{"tenant", "X-Auth-Subject"}}}}; }) ==
        kOptions + "/identity/claims/tenant");
  CHECK(with([](json& o) { o["identity"] = {{"claims", {{"a/b", "x y"}}}}; }) == kOptions + "/identity/claims/a~1b");
  CHECK(with([](json& o) { o["identity"] = {{"user", "x"}}; }) == kOptions + "/identity/user");

  json o = k.authenticate();
  o["algorithms"] = {"none"};
  const auto [path, reason] = error_of(json::array({authenticate_entry(o)}));
  CHECK(path == kOptions + "/algorithms/0");
  CHECK(reason.find("\"none\" is never accepted") != std::string::npos);
}

TEST_CASE("authorize option errors point at the offending key") {
  auto path = [](const json& o) { return error_of(json::array({authorize_entry(o)})).first; };
  CHECK(path(json::object()) == kOptions);
  CHECK(path({{"scopes", json::array()}}) == kOptions);
  CHECK(path({{"scopes", {"a", "b c"}}}) == kOptions + "/scopes/1");
  CHECK(path({{"scopes", "a"}}) == kOptions + "/scopes");
  CHECK(path({{"claims", {{{"claim", "tenant"}}}}}) == kOptions + "/claims/0");
  CHECK(path({{"claims", {{{"equals", "x"}}}}}) == kOptions + "/claims/0/claim");
  CHECK(path({{"claims", {{{"claim", "t"}, {"equals", "x"}, {"in", {"y"}}}}}}) == kOptions + "/claims/0/in");
  CHECK(path({{"claims", {{{"claim", "t"}, {"in", "y"}}}}}) == kOptions + "/claims/0/in");
  CHECK(path({{"claims", {{{"claim", "t"}, {"in", json::array()}}}}}) == kOptions + "/claims/0/in");
  CHECK(path({{"claims", {{{"claim", "t"}, {"equals", {1}}}}}}) == kOptions + "/claims/0/equals");
  CHECK(path({{"claims", {{{"claim", "t"}, {"matches", "x"}}}}}) == kOptions + "/claims/0/matches");
  CHECK(path({{"scopes", {"a"}}, {"any_of", "no"}}) == kOptions + "/any_of");
  CHECK(path({{"scopes", {"a"}}, {"realm", "\n"}}) == kOptions + "/realm");
}

TEST_CASE("verifiers defined once at the top level are shared by every authenticate that names them") {
  KeyFiles k;
  json jwt = k.authenticate();
  jwt["type"] = "jwt";
  jwt["cache"] = {{"enabled", true}, {"max_entries", 100}, {"max_age_s", 60}};
  jwt["typ"] = "JWT";
  jwt["max_token_bytes"] = 4096;
  json doc = json::parse(document(json::array({authenticate_entry({{"verifiers", {"corp"}}})})));
  doc["verifiers"] = {{"corp", jwt}};
  doc["routes"].push_back({{"path", "/b"}, {"upstream", "svc"}, {"middleware", json::array({authenticate_entry({{"verifiers", {"corp"}}})})}});
  const auto config = load_config(doc.dump());
  REQUIRE(config.context.verifiers.size() == 1);
  const auto* a0 = dynamic_cast<const gatehouse::Authenticate*>(config.routes.at(0).middleware.at(0).get());
  const auto* a1 = dynamic_cast<const gatehouse::Authenticate*>(config.routes.at(1).middleware.at(0).get());
  REQUIRE((a0 && a1));
  CHECK(a0->options().verifiers.at(0) == a1->options().verifiers.at(0));  // one verifier, one cache

  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string token = gatehouse::test::make_token(
      k.rsa, {{"alg", "RS256"}, {"kid", "k1"}, {"typ", "JWT"}},
      {{"iss", "https://id.test"}, {"aud", "api"}, {"sub", "alice"}, {"exp", now + 600}});
  auto ex = gt::exchange("GET", "/", {{"authorization", "Bearer " + token}});
  CHECK(gt::run_chain(config.routes.at(1).middleware, ex).status == 200);

  auto error_at = [&](auto edit) {
    json d = doc;
    edit(d);
    try {
      load_config(d.dump());
    } catch (const ConfigError& e) {
      return e.path();
    }
    return std::string("no error");
  };
  CHECK(error_at([](json& d) { d["verifiers"]["corp"].erase("type"); }) == "/verifiers/corp/type");
  CHECK(error_at([](json& d) { d["verifiers"]["corp"]["type"] = "jwk"; }) == "/verifiers/corp/type");
  CHECK(error_at([](json& d) { d["verifiers"]["corp"]["cache"]["max_entries"] = 0; }) ==
        "/verifiers/corp/cache/max_entries");
  CHECK(error_at([](json& d) { d["verifiers"]["corp"]["cache"]["size"] = 1; }) == "/verifiers/corp/cache/size");
  CHECK(error_at([](json& d) { d["verifiers"]["corp"]["issuers"] = json::array(); }) == "/verifiers/corp/issuers");
  CHECK(error_at([](json& d) { d["verifiers"][""] = d["verifiers"]["corp"]; }) == "/verifiers/");
  CHECK(error_at([](json& d) { d["routes"][0]["middleware"][0]["options"]["verifiers"] = {"crop"}; }) ==
        kOptions + "/verifiers/0");
  CHECK(error_at([](json& d) { d["routes"][0]["middleware"][0]["options"]["verifiers"] = json::array(); }) ==
        kOptions + "/verifiers");
  CHECK(error_at([](json& d) { d["routes"][0]["middleware"][0]["options"]["algorithms"] = {"RS256"}; }) ==
        kOptions + "/algorithms");
  CHECK(error_at([](json& d) { d["routes"][0]["middleware"][0]["options"] = json::object(); }) ==
        kOptions + "/verifiers");

  json bad = doc;
  bad["routes"][0]["middleware"][0]["options"]["verifiers"] = {"crop"};
  try {
    load_config(bad.dump());
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.reason().find("did you mean \"corp\"") != std::string::npos);
  }
}

// --- API keys: the "api_keys" verifier type (lib/auth/api_key_verifier_config.cpp) ---

namespace {

const std::string kPartnerKey = "gh_cfg_partner_5a4b3c2d1e0f9a8b7c6d5e4f";
const std::string kReaderKey = "gh_cfg_reader_0f1e2d3c4b5a69788796a5b4";

// A document with verifier "partners" = `verifier` and one route behind authenticate (x-api-key,
// key not forwarded) and authorize (scope orders:write).
json api_key_document(const json& verifier) {
  json doc = json::parse(document(json::array(
      {authenticate_entry({{"verifiers", {"partners"}}, {"credential", {{"header", "x-api-key"}}}, {"forward_token", false},
                           {"identity", {{"claims", {{"gatehouse_api_key_id", "x-auth-key-id"}}}}}}),
       authorize_entry({{"scopes", {"orders:write"}}})})));
  doc["verifiers"] = {{"partners", verifier}};
  return doc;
}

json api_keys() {
  return json::array({{{"sha256", gatehouse::auth::ApiKeyVerifier::hash(kPartnerKey)},
                       {"principal", "partner-a"},
                       {"scopes", {"orders:read", "orders:write"}},
                       {"id", "partner-a-1"}},
                      {{"sha256", gatehouse::auth::ApiKeyVerifier::hash(kReaderKey)}, {"principal", "reader"}}});
}

// {path, reason} of the ConfigError, or {"no error", ""}.
std::pair<std::string, std::string> api_key_error(const json& verifier) {
  try {
    load_config(api_key_document(verifier).dump());
  } catch (const ConfigError& e) {
    return {e.path(), e.reason()};
  }
  return {"no error", ""};
}

}  // namespace

TEST_CASE("an api_keys verifier from the configuration authenticates x-api-key end to end") {
  KeyFiles k;
  const std::string keys_file = (k.dir / "keys.json").string();
  std::ofstream(keys_file) << "// partner keys, rotated by the secrets job\n" << api_keys().dump(2) << "\n";

  for (const json& verifier : {json{{"type", "api_keys"}, {"keys", api_keys()}, {"max_key_bytes", 128}},
                               json{{"type", "api_keys"}, {"keys_file", keys_file}}}) {
    CAPTURE(verifier.dump());
    const auto config = load_config(api_key_document(verifier).dump());
    const auto* v = dynamic_cast<const gatehouse::auth::ApiKeyVerifier*>(config.context.verifiers.at("partners").get());
    REQUIRE(v);
    CHECK(v->size() == 2);
    CHECK(v->max_key_bytes() == (verifier.contains("max_key_bytes") ? 128u : 512u));
    const auto& chain = config.routes.at(0).middleware;

    gt::FakeUpstream up;
    auto ok = gt::exchange("GET", "/", {{"x-api-key", kPartnerKey}, {"x-auth-subject", "mallory"}});
    CHECK(gt::run_chain(chain, ok, &up).status == 200);
    REQUIRE(up.received().size() == 1);
    const auto& h = up.received()[0].headers;
    CHECK(h.get("x-auth-subject") == "partner-a");
    CHECK(h.get("x-auth-scopes") == "orders:read orders:write");
    CHECK(h.get("x-auth-key-id") == "partner-a-1");
    CHECK_FALSE(h.contains("x-api-key"));

    auto reader = gt::exchange("GET", "/", {{"x-api-key", kReaderKey}});
    CHECK(gt::run_chain(chain, reader, &up).status == 403);  // no orders:write
    auto wrong = gt::exchange("GET", "/", {{"x-api-key", kPartnerKey + "x"}});
    CHECK(gt::run_chain(chain, wrong, &up).status == 401);
    auto none = gt::exchange("GET", "/");
    CHECK(gt::run_chain(chain, none, &up).status == 401);
    CHECK(up.received().size() == 1);
  }
}

TEST_CASE("api_keys option errors point at the offending key and never echo a digest") {
  KeyFiles k;
  const std::string vp = "/verifiers/partners";
  auto path = [](auto edit) {
    json v = {{"type", "api_keys"}, {"keys", api_keys()}};
    edit(v);
    return api_key_error(v).first;
  };
  CHECK(path([](json&) {}) == "no error");
  CHECK(path([](json& v) { v.erase("keys"); }) == vp);
  CHECK(path([&](json& v) { v["keys_file"] = k.jwks_file; }) == vp + "/keys_file");
  CHECK(path([](json& v) { v["keys"] = json::array(); }) == vp + "/keys");
  CHECK(path([](json& v) { v["keys"] = "x"; }) == vp + "/keys");
  CHECK(path([](json& v) { v["keys"][1] = "x"; }) == vp + "/keys/1");
  CHECK(path([](json& v) { v["keys"][1].erase("sha256"); }) == vp + "/keys/1/sha256");
  CHECK(path([](json& v) { v["keys"][1]["sha256"] = 7; }) == vp + "/keys/1/sha256");
  CHECK(path([](json& v) { v["keys"][1].erase("principal"); }) == vp + "/keys/1/principal");
  CHECK(path([](json& v) { v["keys"][1]["principal"] = ""; }) == vp + "/keys/1/principal");
  CHECK(path([](json& v) { v["keys"][1]["principal"] = "a\nb"; }) == vp + "/keys/1/principal");
  CHECK(path([](json& v) { v["keys"][0]["scopes"] = "orders:read"; }) == vp + "/keys/0/scopes");
  CHECK(path([](json& v) { v["keys"][0]["scopes"][1] = "orders write"; }) == vp + "/keys/0/scopes/1");
  CHECK(path([](json& v) { v["keys"][0]["scopes"][1] = ""; }) == vp + "/keys/0/scopes/1");
  CHECK(path([](json& v) { v["keys"][0]["scopes"][1] = "orders:read"; }) == vp + "/keys/0/scopes/1");
  CHECK(path([](json& v) { v["keys"][0]["id"] = ""; }) == vp + "/keys/0/id");
  CHECK(path([](json& v) { v["keys"][1]["id"] = "partner-a-1"; }) == vp + "/keys/1/id");
  CHECK(path([](json& v) { v["max_key_bytes"] = 0; }) == vp + "/max_key_bytes");
  CHECK(path([](json& v) { v["max_key_bytes"] = 65537; }) == vp + "/max_key_bytes");
  CHECK(path([&](json& v) {
          v.erase("keys");
          v["keys_file"] = (k.dir / "missing.json").string();
        }) == vp + "/keys_file");

  // Same digest in another case: still the same key.
  json dup = {{"type", "api_keys"}, {"keys", api_keys()}};
  std::string upper = dup["keys"][0]["sha256"];
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  dup["keys"][1]["sha256"] = upper;
  CHECK(api_key_error(dup) == std::pair<std::string, std::string>{vp + "/keys/1/sha256", "same sha256 as " + vp + "/keys/0"});

  // The key itself pasted instead of its digest: refused, and not repeated in the message.
  json pasted = {{"type", "api_keys"}, {"keys", api_keys()}};
  pasted["keys"][0]["sha256"] = kPartnerKey;
  const auto [pp, reason] = api_key_error(pasted);
  CHECK(pp == vp + "/keys/0/sha256");
  CHECK(reason.find(kPartnerKey) == std::string::npos);
  CHECK(reason.find("sha256sum") != std::string::npos);

  // Typos get a suggestion.
  CHECK(api_key_error({{"type", "api_keys"}, {"key", api_keys()}}).second.find("did you mean \"keys\"") != std::string::npos);
  json scope_typo = {{"type", "api_keys"}, {"keys", api_keys()}};
  scope_typo["keys"][1]["scope"] = {"x"};
  CHECK(api_key_error(scope_typo) ==
        std::pair<std::string, std::string>{vp + "/keys/1/scope", "unknown key \"scope\" (did you mean \"scopes\"?)"});
  CHECK(api_key_error({{"type", "api_key"}, {"keys", api_keys()}}).second.find("did you mean \"api_keys\"") !=
        std::string::npos);
}

TEST_CASE("api_keys keys_file errors name the file and the JSON pointer inside it") {
  KeyFiles k;
  const std::string file = (k.dir / "keys.json").string();
  auto error = [&](const std::string& content) {
    std::ofstream(file, std::ios::trunc) << content;
    return api_key_error({{"type", "api_keys"}, {"keys_file", file}});
  };
  const std::string at = "/verifiers/partners/keys_file";
  const std::string in = "in \"" + file + "\"";
  CHECK(error(api_keys().dump()).first == "no error");
  CHECK(error("[") == std::pair<std::string, std::string>{at, in + ": invalid JSON at line 1, column 2"});
  CHECK(error("{}") == std::pair<std::string, std::string>{at, in + ": expected an array, got {}"});
  CHECK(error("[]") == std::pair<std::string, std::string>{at, in + ": at least one key is needed"});
  json no_principal = api_keys();
  no_principal[1].erase("principal");
  CHECK(error(no_principal.dump()) ==
        std::pair<std::string, std::string>{at, in + " at /1/principal: missing required key \"principal\""});
  // Duplicate keys inside the file are errors, as in the configuration.
  const std::string h = gatehouse::auth::ApiKeyVerifier::hash(kReaderKey);
  CHECK(error("[{\"sha256\": \"" + h + "\", \"principal\": \"a\", \"principal\": \"b\"}]") ==
        std::pair<std::string, std::string>{at, in + " at /0/principal: duplicate key \"principal\""});
}

TEST_CASE("an inline authenticate's \"cache\" turns the verified-token cache off or sizes it") {
  KeyFiles k;
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string token = gatehouse::test::make_token(
      k.rsa, {{"alg", "RS256"}, {"kid", "k1"}}, {{"iss", "https://id.test"}, {"aud", "api"}, {"exp", now + 600}});
  for (const bool enabled : {false, true}) {
    CAPTURE(enabled);
    json o = k.authenticate();
    o["cache"] = {{"enabled", enabled}, {"max_entries", 5}, {"max_age_s", 60}};
    const auto config = load_config(document(json::array({authenticate_entry(o)})));
    const auto* a = dynamic_cast<const gatehouse::Authenticate*>(config.routes.at(0).middleware.at(0).get());
    REQUIRE(a);
    const auto* v = dynamic_cast<const gatehouse::auth::JwtVerifier*>(a->options().verifiers.at(0).get());
    REQUIRE(v);
    CHECK(v->options().cache.enabled == enabled);
    CHECK(v->options().cache.max_entries == 5);
    CHECK(v->options().cache.max_age == std::chrono::seconds(60));
    for (int i = 0; i < 2; ++i) {
      const auto r = v->try_verify_now(token);
      REQUIRE(r);
      CHECK(r->ok());
    }
    CHECK(v->stats().cache_hits == (enabled ? 1u : 0u));  // off: every call verifies in full
    CHECK(v->stats().cache_entries == (enabled ? 1u : 0u));
  }
  CHECK(path_of([&] {
          json o = k.authenticate();
          o["cache"] = {{"enabled", "no"}};
          return o;
        }()) == kOptions + "/cache/enabled");
  CHECK(path_of([&] {
          json o = k.authenticate();
          o["cache"] = false;
          return o;
        }()) == kOptions + "/cache");
}
