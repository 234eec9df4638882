// ApiKeyVerifier alone, and behind Authenticate + Authorize through testing::run_chain (no sockets).
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include "gatehouse/auth/api_key_verifier.hpp"
#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/middleware/authenticate.hpp"
#include "gatehouse/middleware/authorize.hpp"
#include "gatehouse/testing.hpp"
#include "support/capture_logger.hpp"
#include "support/jwt_signer.hpp"

using namespace gatehouse;
using namespace gatehouse::auth;
namespace gt = gatehouse::testing;
using gatehouse::test::run_verify;
using nlohmann::json;

namespace {

const std::string kPartnerKey = "gh_live_4f9c2b7e1a6d8035c7e2f1b9a4d6c8e0";  // what a partner sends
const std::string kReaderKey = "gh_live_reader_only_0123456789abcdef";

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

ApiKeyVerifierOptions options() {
  ApiKeyVerifierOptions o;
  o.keys = {{ApiKeyVerifier::hash(kPartnerKey), "partner-a", {"orders:read", "orders:write"}, "partner-a-2024"},
            {upper(ApiKeyVerifier::hash(kReaderKey)), "reader", {"orders:read"}, ""}};
  return o;
}

std::shared_ptr<const ApiKeyVerifier> verifier() { return std::make_shared<const ApiKeyVerifier>(options()); }

// The message of the invalid_argument the options raise, "" if none.
std::string construction_error(const ApiKeyVerifierOptions& o) {
  try {
    ApiKeyVerifier v(o);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

using gatehouse::test::CaptureLogger;

std::string message_of(TokenError e) { return make_error_code(e).message(); }

}  // namespace

TEST_CASE("api keys: hash() is SHA-256 in lowercase hex") {
  CHECK(ApiKeyVerifier::hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(ApiKeyVerifier::hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("api keys: a configured key gives its principal, scopes and id as claims") {
  const auto v = verifier();
  CHECK(v->size() == 2);
  CHECK(v->max_key_bytes() == 512);
  const std::optional<VerifyResult> r = v->try_verify_now(kPartnerKey);
  REQUIRE(r.has_value());
  REQUIRE(r->ok());
  const Claims& c = r->value();
  CHECK(c.subject() == "partner-a");
  CHECK(c.string("scope") == "orders:read orders:write");
  CHECK(c.scopes() == std::vector<std::string>{"orders:read", "orders:write"});
  CHECK(c.has_scope("orders:write"));
  CHECK(c.string("gatehouse_api_key_id") == "partner-a-2024");
  CHECK(c.dump() == R"({"gatehouse_api_key_id":"partner-a-2024","scope":"orders:read orders:write","sub":"partner-a"})");
  CHECK_FALSE(c.has("exp"));

  // Built once: every request with this key shares one payload.
  CHECK(v->check(kPartnerKey).value().same_payload(c));

  // An upper-case digest in the options works; no id means no id claim.
  const VerifyResult reader = v->check(kReaderKey);
  REQUIRE(reader.ok());
  CHECK(reader->dump() == R"({"scope":"orders:read","sub":"reader"})");
}

TEST_CASE("api keys: no scopes: no scope claim at all") {
  ApiKeyVerifierOptions o;
  o.keys = {{ApiKeyVerifier::hash("k-without-scopes-000000000000"), "svc", {}, ""}};
  ApiKeyVerifier v(std::move(o));
  const VerifyResult r = v.check("k-without-scopes-000000000000");
  REQUIRE(r.ok());
  CHECK(r->dump() == R"({"sub":"svc"})");
  CHECK(r->scopes().empty());
}

TEST_CASE("api keys: verify() answers like try_verify_now() and does not keep the caller's buffer") {
  const auto v = verifier();
  CHECK(run_verify(*v, kPartnerKey)->subject() == "partner-a");
  CHECK(run_verify(*v, "nope-nope-nope").error() == TokenError::unknown_key);

  asio::io_context io;
  std::optional<VerifyResult> out;
  {
    std::string key = kPartnerKey;
    auto work = v->verify(key);
    key.assign(key.size(), 'x');  // the view verify() got now reads garbage
    asio::co_spawn(io, std::move(work), [&](std::exception_ptr, VerifyResult r) { out.emplace(std::move(r)); });
  }
  io.run();
  REQUIRE(out.has_value());
  CHECK(out->ok());
}

TEST_CASE("api keys: wrong and near-miss keys are unknown_key, and the detail never holds the key") {
  const auto v = verifier();
  std::vector<std::string> misses = {
      "gh_live_00000000000000000000000000000000",
      kPartnerKey.substr(0, kPartnerKey.size() - 1),           // one byte short
      kPartnerKey + "0",                                       // one byte more
      "x" + kPartnerKey.substr(1),                             // first byte changed
      kPartnerKey.substr(0, kPartnerKey.size() - 1) + "1",     // last byte changed
      upper(kPartnerKey),                                      // keys are case-sensitive
      ApiKeyVerifier::hash(kPartnerKey),                       // the digest is not the key
      upper(ApiKeyVerifier::hash(kReaderKey)),
  };
  for (const auto& key : misses) {
    CAPTURE(key);
    const VerifyResult r = v->check(key);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == TokenError::unknown_key);
    CHECK(r.detail() == "unknown API key (sha256 " + ApiKeyVerifier::hash(key).substr(0, 8) + "...)");
    CHECK(r.detail().find(key) == std::string::npos);
    CHECK(r.detail().find(ApiKeyVerifier::hash(key).substr(0, 9)) == std::string::npos);
  }
}

TEST_CASE("api keys: empty, oversized and non-visible-ASCII keys are refused before any lookup") {
  const auto v = verifier();
  CHECK(v->check("").error() == TokenError::malformed);
  const std::vector<std::string> bad = {kPartnerKey + "\n", " " + kPartnerKey,  kPartnerKey + " ",  std::string("ab\0cd", 5),
                                       kPartnerKey + "\x7f", kPartnerKey + "\t", "cl\xc3\xa9", "a b"};
  for (const auto& key : bad) {
    CAPTURE(key);
    const VerifyResult r = v->check(key);
    CHECK(r.error() == TokenError::malformed);
    CHECK(r.detail() == "API key holds a space, control or non-ASCII byte");
  }

  // The cap: exactly max_key_bytes is fine, one more is token_too_large (whatever the bytes are).
  const std::string longest(512, 'k');
  ApiKeyVerifierOptions o;
  o.keys = {{ApiKeyVerifier::hash(longest), "long", {}, ""}};
  ApiKeyVerifier big(o);
  CHECK(big.check(longest).ok());
  const VerifyResult too_long = big.check(longest + "k");
  CHECK(too_long.error() == TokenError::token_too_large);
  CHECK(too_long.detail() == "API key of 513 bytes, more than max_key_bytes 512");
  CHECK(big.check(std::string(100'000, '\n')).error() == TokenError::token_too_large);

  o.max_key_bytes = 100;
  ApiKeyVerifier small(o);
  CHECK(small.check(longest).error() == TokenError::token_too_large);
}

TEST_CASE("api keys: the options are validated when the verifier is built") {
  const std::string h = ApiKeyVerifier::hash("some-key-000000000000000000");
  auto with = [&](auto edit) {
    ApiKeyVerifierOptions o;
    o.keys = {{h, "alice", {"a"}, "first"}, {ApiKeyVerifier::hash("other-key-00000000000000000"), "bob", {}, ""}};
    edit(o);
    return construction_error(o);
  };
  CHECK(with([](ApiKeyVerifierOptions&) {}).empty());
  CHECK(with([](ApiKeyVerifierOptions& o) { o.keys.clear(); }) == "ApiKeyVerifier: no keys configured");
  CHECK(with([](ApiKeyVerifierOptions& o) { o.keys[1].sha256.pop_back(); }) ==
        "ApiKeyVerifier: key 1: sha256 is not 64 hex digits");
  CHECK(with([](ApiKeyVerifierOptions& o) { o.keys[0].sha256[5] = 'g'; }) ==
        "ApiKeyVerifier: key 0 (id 'first'): sha256 is not 64 hex digits");
  CHECK(with([](ApiKeyVerifierOptions& o) { o.keys[0].sha256 = "the-key-itself"; }) ==
        "ApiKeyVerifier: key 0 (id 'first'): sha256 is not 64 hex digits");
  CHECK(with([](ApiKeyVerifierOptions& o) { o.keys[1].sha256 = o.keys[0].sha256; }) ==
        "ApiKeyVerifier: key 1: same sha256 as key 0");
  // Hex is case-insensitive, so the same digest in another case is still a duplicate.
  CHECK(with([&](ApiKeyVerifierOptions& o) { o.keys.push_back({upper(h), "carol", {}, ""}); }) ==
        "ApiKeyVerifier: key 2: same sha256 as key 0");
  CHECK(with([](ApiKeyVerifierOptions& o) { o.keys[1].principal.clear(); }) == "ApiKeyVerifier: key 1: empty principal");
  CHECK(with([](ApiKeyVerifierOptions& o) { o.keys[1].principal = "bob\r\nx-admin: 1"; }) ==
        "ApiKeyVerifier: key 1: the principal contains control characters");
  CHECK(with([](ApiKeyVerifierOptions& o) { o.keys[0].scopes = {"a b"}; }) ==
        "ApiKeyVerifier: key 0 (id 'first'): invalid scope 'a b'");
  CHECK(with([](ApiKeyVerifierOptions& o) { o.keys[0].scopes = {""}; }) ==
        "ApiKeyVerifier: key 0 (id 'first'): invalid scope ''");
  CHECK(with([](ApiKeyVerifierOptions& o) { o.keys[0].scopes = {"say\"hi"}; }).find("invalid scope") != std::string::npos);
  CHECK(with([](ApiKeyVerifierOptions& o) { o.keys[1].id = "first"; }) ==
        "ApiKeyVerifier: key 1 (id 'first'): the id is also used by key 0");
  CHECK(with([](ApiKeyVerifierOptions& o) { o.keys[1].id = "a\tb"; }).find("the id contains control characters") !=
        std::string::npos);
  CHECK(with([](ApiKeyVerifierOptions& o) { o.max_key_bytes = 0; }) == "ApiKeyVerifier: max_key_bytes must be in 1..65536");
  CHECK(with([](ApiKeyVerifierOptions& o) { o.max_key_bytes = 65537; }) ==
        "ApiKeyVerifier: max_key_bytes must be in 1..65536");
  // No message ever repeats a digest: it may be a key pasted in the wrong place.
  CHECK(with([&](ApiKeyVerifierOptions& o) { o.keys[1].sha256 = h; }).find(h) == std::string::npos);
}

TEST_CASE("api keys: Authenticate + Authorize with an x-api-key header, through run_chain") {
  const auto log = std::make_shared<CaptureLogger>();
  auto chain_with = [&](bool forward_token) {
    AuthenticateOptions a;
    a.verifiers = {verifier()};
    a.source = CredentialSource::header("x-api-key");
    a.realm = "partners";
    a.forward_token = forward_token;
    a.identity.claims = {{"gatehouse_api_key_id", "x-auth-key-id"}};
    a.logger = log;
    return std::vector<std::shared_ptr<const Middleware>>{
        std::make_shared<Authenticate>(std::move(a)),
        std::make_shared<Authorize>(AuthorizeOptions{.rule = Rule::require_scopes({"orders:write"}), .realm = "partners"})};
  };

  SUBCASE("the right key: 200, identity headers at the upstream, key removed (forward_token=false)") {
    const auto chain = chain_with(false);
    auto ex = gt::exchange("POST", "/orders",
                           {{"x-api-key", kPartnerKey}, {"X-Auth-Subject", "mallory"}, {"x-auth-key-id", "forged"}});
    gt::FakeUpstream up;
    const auto r = gt::run_chain(chain, ex, &up);
    CHECK(r.status == 200);
    REQUIRE(up.received().size() == 1);
    const Headers& h = up.received()[0].headers;
    CHECK(h.count("x-auth-subject") == 1);
    CHECK(h.get("x-auth-subject") == "partner-a");
    CHECK(h.get("x-auth-scopes") == "orders:read orders:write");
    CHECK(h.get("x-auth-key-id") == "partner-a-2024");
    CHECK_FALSE(h.contains("x-api-key"));
    REQUIRE(ex.find<Claims>());
    CHECK(ex.find<Claims>()->subject() == "partner-a");
    CHECK(log->entries().empty());
  }
  SUBCASE("forward_token=true keeps the key; an optional \"Bearer \" prefix is accepted") {
    const auto chain = chain_with(true);
    auto ex = gt::exchange("GET", "/orders", {{"x-api-key", "Bearer " + kPartnerKey}});
    gt::FakeUpstream up;
    CHECK(gt::run_chain(chain, ex, &up).status == 200);
    REQUIRE(up.received().size() == 1);
    CHECK(up.received()[0].headers.get("x-api-key") == "Bearer " + kPartnerKey);
  }
  SUBCASE("a key without the scope: 403 insufficient_scope") {
    const auto chain = chain_with(false);
    auto ex = gt::exchange("GET", "/orders", {{"x-api-key", kReaderKey}});
    gt::FakeUpstream up;
    const auto r = gt::run_chain(chain, ex, &up);
    CHECK(r.status == 403);
    CHECK(r.headers.get("www-authenticate") ==
          "Bearer realm=\"partners\", error=\"insufficient_scope\", scope=\"orders:write\"");
    CHECK(up.received().empty());
  }
  SUBCASE("a wrong key: 401 invalid_token; the log names the digest prefix, never the key") {
    const auto chain = chain_with(false);
    const std::string wrong = kPartnerKey.substr(0, kPartnerKey.size() - 1) + "f";
    auto ex = gt::exchange("GET", "/orders", {{"x-api-key", wrong}});
    gt::FakeUpstream up;
    const auto r = gt::run_chain(chain, ex, &up);
    CHECK(r.status == 401);
    CHECK(r.headers.get("www-authenticate") == "Bearer realm=\"partners\", error=\"invalid_token\"");
    CHECK(up.received().empty());
    const auto logged = log->entries();
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].level == LogLevel::info);
    CHECK(logged[0].message == "authenticate: credential refused");
    CHECK(logged[0].field("error") == message_of(TokenError::unknown_key));
    CHECK(logged[0].field("detail").find(wrong) == std::string::npos);
    CHECK(logged[0].field("detail").find(ApiKeyVerifier::hash(wrong).substr(0, 8)) != std::string::npos);
    REQUIRE(ex.find<AuthFailure>());
    CHECK(ex.find<AuthFailure>()->reason.find(wrong) == std::string::npos);
  }
  SUBCASE("no key: 401 with a plain challenge; two keys: 400") {
    const auto chain = chain_with(false);
    auto none = gt::exchange("GET", "/orders", {{"authorization", "Bearer " + kPartnerKey}});
    const auto r = gt::run_chain(chain, none);
    CHECK(r.status == 401);
    CHECK(r.headers.get("www-authenticate") == "Bearer realm=\"partners\"");
    auto two = gt::exchange("GET", "/orders", {{"x-api-key", kPartnerKey}, {"x-api-key", kReaderKey}});
    CHECK(gt::run_chain(chain, two).status == 400);
  }
}

TEST_CASE("api keys: next to a JWT verifier: either credential works, and a JWT's own failure is what gets logged") {
  using gatehouse::test::make_token;
  using gatehouse::test::TestKey;
  const TestKey rsa = TestKey::generate("RS256");
  gt::FakeClock clock;
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count();
  JwtVerifierOptions jo;
  jo.algorithms = {"RS256"};
  jo.issuers = {{"https://id.test", StaticKeySource::from_jwks(rsa.jwks("k1").dump())}};
  jo.clock = &clock;
  const auto log = std::make_shared<CaptureLogger>();
  AuthenticateOptions a;
  a.verifiers = {verifier(), std::make_shared<const JwtVerifier>(std::move(jo))};  // API keys first
  a.logger = log;
  const std::vector<std::shared_ptr<const Middleware>> chain = {std::make_shared<Authenticate>(std::move(a))};
  auto jwt = [&](std::int64_t exp) {
    return make_token(rsa, {{"alg", "RS256"}, {"kid", "k1"}}, {{"iss", "https://id.test"}, {"sub", "alice"}, {"exp", exp}});
  };

  gt::FakeUpstream up;
  auto by_key = gt::exchange("GET", "/", {{"authorization", "Bearer " + kPartnerKey}});
  CHECK(gt::run_chain(chain, by_key, &up).status == 200);
  auto by_jwt = gt::exchange("GET", "/", {{"authorization", "Bearer " + jwt(now + 600)}});
  CHECK(gt::run_chain(chain, by_jwt, &up).status == 200);
  REQUIRE(up.received().size() == 2);
  CHECK(up.received()[0].headers.get("x-auth-subject") == "partner-a");
  CHECK(up.received()[1].headers.get("x-auth-subject") == "alice");

  // unknown_key ranks below a JWT verifier's verdict on its own token.
  auto expired = gt::exchange("GET", "/", {{"authorization", "Bearer " + jwt(now - 600)}});
  CHECK(gt::run_chain(chain, expired).status == 401);
  const auto logged = log->entries();
  REQUIRE(logged.size() == 1);
  CHECK(logged[0].field("error") == message_of(TokenError::expired));
}
