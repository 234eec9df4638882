// MintIdentityToken and jwks_handler, with no sockets.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/auth/key_source.hpp"
#include "gatehouse/middleware/authenticate.hpp"
#include "gatehouse/middleware/mint_identity_token.hpp"
#include "gatehouse/testing.hpp"
#include "support/jwt_signer.hpp"

using namespace gatehouse;
using nlohmann::json;
using namespace std::chrono_literals;
namespace gt = gatehouse::testing;

namespace {

std::shared_ptr<const auth::TokenMinter> minter() {
  static const auto m = std::make_shared<const auth::TokenMinter>(
      auth::TokenMinterOptions{.issuer = "https://gatehouse.internal", .audience = "svc"});
  return m;
}

// What a service does with the header: verify it with the published JWKS.
auth::VerifyResult service_verifies(std::string_view token, const Clock& clock) {
  auth::JwtVerifierOptions o;
  o.algorithms = {"ES256"};
  o.issuers = {{"https://gatehouse.internal", auth::StaticKeySource::from_jwks(minter()->jwks_json())}};
  o.audiences = {"svc"};
  o.clock = &clock;
  return *auth::JwtVerifier(std::move(o)).try_verify_now(token);
}

}  // namespace

TEST_CASE("forged identity headers are removed, whatever their case, even without claims") {
  const MintIdentityToken mint({.minter = minter()});
  auto ex = gt::exchange("GET", "/", {{"X-Gatehouse-Identity", "forged"}, {"x-gatehouse-identity", "forged2"},
                                      {"x-other", "kept"}});
  CHECK(gt::run(mint.on_request(ex)).is_next());
  CHECK_FALSE(ex.request().headers().contains("x-gatehouse-identity"));
  CHECK(ex.request().headers().get("x-other") == "kept");
}

TEST_CASE("with verified claims the upstream gets one minted token that a service accepts") {
  gt::FakeClock clock;
  const MintIdentityToken mint({.minter = minter(), .clock = &clock});
  auto ex = gt::exchange("GET", "/", {{"x-gatehouse-identity", "forged"}});
  ex.emplace<auth::Claims>(json{{"sub", "alice"}, {"scope", "read"}});
  CHECK(gt::run(mint.on_request(ex)).is_next());
  REQUIRE(ex.request().headers().count("x-gatehouse-identity") == 1);
  const std::string token(*ex.request().headers().get("x-gatehouse-identity"));
  CHECK(token != "forged");
  const auto r = service_verifies(token, clock);
  REQUIRE(r.ok());
  CHECK(r.value().subject() == "alice");
  CHECK(r.value().scopes() == std::vector<std::string>{"read"});
}

TEST_CASE("the authorization header carries the token as a bearer credential") {
  gt::FakeClock clock;
  const MintIdentityToken mint({.minter = minter(), .header = "Authorization", .clock = &clock});
  auto ex = gt::exchange("GET", "/", {{"authorization", "Bearer client-token"}});
  ex.emplace<auth::Claims>(json{{"sub", "bob"}});
  CHECK(gt::run(mint.on_request(ex)).is_next());
  REQUIRE(ex.request().headers().count("authorization") == 1);
  const std::string value(*ex.request().headers().get("authorization"));
  REQUIRE(value.starts_with("Bearer "));
  CHECK(service_verifies(value.substr(7), clock).value().subject() == "bob");

  auto anonymous = gt::exchange("GET", "/", {{"authorization", "Bearer client-token"}});
  CHECK(gt::run(mint.on_request(anonymous)).is_next());
  CHECK_FALSE(anonymous.request().headers().contains("authorization"));
}

TEST_CASE("after an optional Authenticate: identity for authenticated callers, none for the others") {
  const auto key = test::TestKey::generate("ES256");
  auth::JwtVerifierOptions vo;
  vo.algorithms = {"ES256"};
  vo.issuers = {{"https://id.test", auth::StaticKeySource::from_jwks(key.jwks("k1").dump())}};
  AuthenticateOptions ao;
  ao.verifiers = {std::make_shared<auth::JwtVerifier>(std::move(vo))};
  ao.optional = true;
  const std::vector<std::shared_ptr<const Middleware>> chain = {
      std::make_shared<Authenticate>(std::move(ao)), std::make_shared<MintIdentityToken>(MintIdentityTokenOptions{.minter = minter()})};

  auto anonymous = gt::exchange("GET", "/", {{"x-gatehouse-identity", "forged"}});
  gt::FakeUpstream up;
  CHECK(gt::run_chain(chain, anonymous, &up).status == 200);
  REQUIRE(up.received().size() == 1);
  CHECK_FALSE(up.received()[0].headers.contains("x-gatehouse-identity"));

  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string token = test::make_token(key, {{"alg", "ES256"}, {"kid", "k1"}},
                                             {{"iss", "https://id.test"}, {"sub", "carol"}, {"exp", now + 300}});
  auto authed = gt::exchange("GET", "/", {{"authorization", "Bearer " + token}, {"X-GATEHOUSE-IDENTITY", "forged"}});
  CHECK(gt::run_chain(chain, authed, &up).status == 200);
  REQUIRE(up.received().size() == 2);
  REQUIRE(up.received()[1].headers.count("x-gatehouse-identity") == 1);
  const std::string minted(*up.received()[1].headers.get("x-gatehouse-identity"));
  CHECK(service_verifies(minted, Clock::system()).value().subject() == "carol");
}

TEST_CASE("MintIdentityToken options are checked") {
  CHECK_THROWS_AS(MintIdentityToken({}), std::invalid_argument);
  CHECK_THROWS_AS(MintIdentityToken({.minter = minter(), .header = "bad header"}), std::invalid_argument);
  CHECK_THROWS_AS(MintIdentityToken({.minter = minter(), .header = ""}), std::invalid_argument);
  CHECK_THROWS_AS(jwks_handler(nullptr), std::invalid_argument);
}

TEST_CASE("jwks_handler serves the public keys to GET and HEAD only") {
  const Handler h = jwks_handler(minter());
  for (const char* method : {"GET", "HEAD"}) {
    CAPTURE(method);
    auto ex = gt::exchange(method, "/.well-known/jwks.json");
    Flow f = gt::run(h(ex));
    REQUIRE(f.is_response());
    CHECK(f.response().status() == 200);
    CHECK(f.response().headers().get("content-type") == "application/json");
    CHECK(f.response().headers().get("cache-control") == "max-age=300");
    CHECK(f.response().body() == minter()->jwks_json());
    const json jwks = json::parse(f.response().body());
    CHECK(jwks.at("keys").at(0).at("kid") == minter()->kid());
    CHECK_FALSE(jwks.at("keys").at(0).contains("d"));
  }
  auto post = gt::exchange("POST", "/.well-known/jwks.json");
  Flow f = gt::run(h(post));
  REQUIRE(f.is_response());
  CHECK(f.response().status() == 405);
  CHECK(f.response().headers().get("allow") == "GET, HEAD");
}
