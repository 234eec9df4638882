// Tokens minted by npm `jose` (an independent JOSE implementation) must verify here.
#include <doctest/doctest.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <set>
#include <string>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include "gatehouse/auth/jwt_verifier.hpp"
#include "support/jwt_signer.hpp"

#ifndef GATEHOUSE_SOURCE_DIR
#error "GATEHOUSE_SOURCE_DIR must name the source tree (set in tests/meson.build)"
#endif

using namespace gatehouse::auth;
using gatehouse::test::run_verify;
using nlohmann::json;

namespace {

const std::filesystem::path kInteropDir = std::filesystem::path(GATEHOUSE_SOURCE_DIR) / "tests" / "interop";
const std::string kHowToInstall =
    "run `npm ci --prefix tests/interop` in the source tree (needs Node.js 20+ and npm)";

struct CommandOutput {
  int status = -1;
  std::string text;
};

CommandOutput run_command(const std::string& command) {
  CommandOutput out;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.text.append(buf, n);
  out.status = pclose(pipe);
  return out;
}

}  // namespace

TEST_CASE("jose interop: tokens minted by npm jose verify for every algorithm") {
  const CommandOutput node = run_command("node --version 2>&1");
  if (node.status != 0) {
    const std::string why = node.text.substr(0, node.text.find_last_not_of("\r\n") + 1);
    FAIL("node is not on PATH (" << why << "); install Node.js 20+, then " << kHowToInstall);
  }
  if (!std::filesystem::exists(kInteropDir / "node_modules" / "jose" / "package.json")) {
    FAIL("npm package jose is not installed in " << kInteropDir.string() << ": " << kHowToInstall);
  }
  const CommandOutput minted = run_command("node '" + (kInteropDir / "mint_tokens.mjs").string() + "' 2>&1");
  REQUIRE_MESSAGE(minted.status == 0, "mint_tokens.mjs failed: " << minted.text);
  const json doc = json::parse(minted.text, nullptr, /*allow_exceptions=*/false);
  REQUIRE_MESSAGE(doc.is_object(), "mint_tokens.mjs printed no JSON: " << minted.text);
  CHECK(doc.value("jose", "") == "5.9.6");
  const json& tokens = doc.at("tokens");
  std::set<std::string> seen;
  for (const json& t : tokens) {
    const std::string alg = t.at("alg").get<std::string>();
    const std::string token = t.at("token").get<std::string>();
    CAPTURE(alg);
    seen.insert(alg);

    JwtVerifierOptions o;
    o.algorithms = {alg};
    o.issuers = {{t.at("issuer").get<std::string>(), StaticKeySource::from_jwks(t.at("jwks").dump())}};
    o.audiences = {t.at("audience").get<std::string>()};
    o.typ = "JWT";
    o.required_claims = {"sub", "jti", "iat"};
    JwtVerifier v(std::move(o));

    const auto now = v.try_verify_now(token);
    REQUIRE(now);
    INFO("detail: " << now->detail());
    REQUIRE(now->ok());
    const Claims& claims = now->value();
    CHECK(claims.subject() == "user-" + alg);
    CHECK(claims.scopes() == std::vector<std::string>{"read", "write"});
    CHECK(claims.string("tenant") == "acme");
    CHECK(claims.expires_at() > claims.issued_at());
    CHECK(run_verify(v, token).ok());

    // The same token with one payload character changed must fail the signature.
    std::string tampered = token;
    const std::size_t at = tampered.find('.') + 5;
    tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
    JwtVerifier fresh([&] {
      JwtVerifierOptions f;
      f.algorithms = {alg};
      f.issuers = {{t.at("issuer").get<std::string>(), StaticKeySource::from_jwks(t.at("jwks").dump())}};
      return f;
    }());
    const VerifyResult bad = run_verify(fresh, tampered);
    CHECK_FALSE(bad.ok());
  }
  CHECK(seen == std::set<std::string>{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                                      "ES512", "EdDSA", "HS256", "HS384", "HS512"});
}
