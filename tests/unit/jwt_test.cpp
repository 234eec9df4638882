#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include "auth/base64url.hpp"
#include "auth/jws_signature.hpp"
#include "gatehouse/auth/claims.hpp"
#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/auth/token_error.hpp"
#include "support/jwt_signer.hpp"

using namespace gatehouse::auth;
using gatehouse::test::b64url;
using gatehouse::test::run_verify;
using gatehouse::test::hmac_sign;
using gatehouse::test::make_token;
using gatehouse::test::make_token_text;
using gatehouse::test::signing_input;
using gatehouse::test::TestKey;
using nlohmann::json;

namespace {

class TestClock final : public gatehouse::Clock {
 public:
  explicit TestClock(std::int64_t seconds) : now_(std::chrono::seconds(seconds)) {}
  time_point now() const noexcept override { return now_; }
  void set(std::int64_t seconds) { now_ = time_point(std::chrono::seconds(seconds)); }
  void advance(std::chrono::seconds d) { now_ += d; }

 private:
  time_point now_;
};

constexpr std::int64_t kNow = 1'700'000'000;
const std::string kIssuer = "https://issuer.test";

// Runs the synchronous path and the coroutine; where the first decides, both must agree.
VerifyResult verify_both(const TokenVerifier& v, std::string_view token) {
  const auto now = v.try_verify_now(token);
  VerifyResult async = run_verify(v, token);
  if (now) {
    CHECK(now->ok() == async.ok());
    CHECK(now->error() == async.error());
  }
  return async;
}

void expect_error(const TokenVerifier& v, std::string_view token, TokenError e) {
  const VerifyResult r = verify_both(v, token);
  INFO("detail: " << r.detail());
  CHECK_FALSE(r.ok());
  CHECK(r.error() == make_error_code(e));
}

void expect_ok(const TokenVerifier& v, std::string_view token) {
  const VerifyResult r = verify_both(v, token);
  INFO("error: " << r.error().message() << " detail: " << r.detail());
  CHECK(r.ok());
}

struct Fixture {
  TestClock clock{kNow};
  TestKey rsa = TestKey::generate("RS256");
  std::shared_ptr<StaticKeySource> keys = StaticKeySource::from_jwks(rsa.jwks("k1").dump());

  JwtVerifierOptions options(std::vector<std::string> algorithms = {"RS256"}) {
    JwtVerifierOptions o;
    o.algorithms = std::move(algorithms);
    o.issuers = {{kIssuer, keys}};
    o.audiences = {"api"};
    o.clock = &clock;
    return o;
  }
  static json header() { return {{"alg", "RS256"}, {"kid", "k1"}, {"typ", "JWT"}}; }
  static json payload() {
    return {{"iss", kIssuer}, {"aud", "api"}, {"sub", "alice"}, {"exp", kNow + 600}, {"iat", kNow},
            {"scope", "read write"}};
  }
  std::string token(const json& h = header(), const json& p = payload()) const { return make_token(rsa, h, p); }
};

std::vector<std::string> split(const std::string& token) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t dot; (dot = token.find('.', start)) != std::string::npos; start = dot + 1) {
    parts.push_back(token.substr(start, dot - start));
  }
  parts.push_back(token.substr(start));
  return parts;
}

// ---- RFC 7515 Appendix A and RFC 8037 Appendix A.4 -------------------------------------------

constexpr const char* kRfcPayload =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
constexpr std::int64_t kRfcExp = 1300819380;

const std::string kA1Token = std::string("eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.") + kRfcPayload +
                             ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
constexpr const char* kA1Jwk =
    R"({"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"})";

const std::string kA2Token =
    std::string("eyJhbGciOiJSUzI1NiJ9.") + kRfcPayload +
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CU"
    "Ar7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO"
    "--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN"
    "_IoypGlUPQGe77Rw";
constexpr const char* kA2Jwk =
    R"({"kty":"RSA","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AQAB"})";

const std::string kA3Token = std::string("eyJhbGciOiJFUzI1NiJ9.") + kRfcPayload +
                             ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
constexpr const char* kA3Jwk =
    R"({"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})";

constexpr const char* kA4Token =
    "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA.AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34X"
    "O0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn";
constexpr const char* kA4Jwk =
    R"({"kty":"EC","crv":"P-521","x":"AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk","y":"ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2"})";

constexpr const char* kEd25519Token =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4"
    "ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
constexpr const char* kEd25519Jwk = R"({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})";

JwtVerifierOptions rfc_options(const char* alg, const char* jwk, const TestClock& clock) {
  JwtVerifierOptions o;
  o.algorithms = {alg};
  o.issuers = {{"joe", StaticKeySource::from_jwks(std::string(R"({"keys":[)") + jwk + "]}")}};
  o.clock = &clock;
  return o;
}

// Checks the signature of a published compact JWS directly (for payloads that are not claims).
bool rfc_signature_ok(const char* token, const char* jwk, JwsAlgorithm alg) {
  const std::string t = token;
  const std::size_t last = t.rfind('.');
  const auto sig = base64url_decode(std::string_view(t).substr(last + 1));
  return sig && verify_jws_signature(alg, JsonWebKey::from_json(std::string_view(jwk)), t.substr(0, last), *sig);
}

}  // namespace

TEST_CASE("jwt: RFC 7515 A.1 (HS256) verifies, and expires on time") {
  TestClock clock(kRfcExp - 60);
  auto o = rfc_options("HS256", kA1Jwk, clock);
  o.typ = "JWT";
  JwtVerifier v(std::move(o));
  const VerifyResult r = verify_both(v, kA1Token);
  REQUIRE(r.ok());
  CHECK(r->issuer() == "joe");
  CHECK(r->integer("exp") == kRfcExp);
  CHECK(r->boolean("http://example.com/is_root") == true);
  clock.set(kRfcExp + 31);
  expect_error(v, kA1Token, TokenError::expired);
}

TEST_CASE("jwt: RFC 7515 A.2 (RS256) verifies") {
  TestClock clock(kRfcExp - 1);
  JwtVerifier v(rfc_options("RS256", kA2Jwk, clock));
  expect_ok(v, kA2Token);
  CHECK(rfc_signature_ok(kA2Token.c_str(), kA2Jwk, JwsAlgorithm::rs256));
  CHECK_FALSE(rfc_signature_ok(kA2Token.c_str(), kA2Jwk, JwsAlgorithm::rs384));
}

TEST_CASE("jwt: RFC 7515 A.3 (ES256) verifies") {
  TestClock clock(kRfcExp - 1);
  JwtVerifier v(rfc_options("ES256", kA3Jwk, clock));
  expect_ok(v, kA3Token);
  // The RSA vector's key cannot check the EC vector.
  JwtVerifier wrong(rfc_options("ES256", kA2Jwk, clock));
  expect_error(wrong, kA3Token, TokenError::unknown_key);
}

TEST_CASE("jwt: RFC 7515 A.4 (ES512) and RFC 8037 A.4 (Ed25519) signatures verify") {
  CHECK(rfc_signature_ok(kA4Token, kA4Jwk, JwsAlgorithm::es512));
  CHECK(rfc_signature_ok(kEd25519Token, kEd25519Jwk, JwsAlgorithm::eddsa));
  CHECK_FALSE(rfc_signature_ok(kA4Token, kA3Jwk, JwsAlgorithm::es512));
  std::string tampered = kEd25519Token;
  tampered[25] = tampered[25] == 'a' ? 'b' : 'a';  // inside the payload
  CHECK_FALSE(rfc_signature_ok(tampered.c_str(), kEd25519Jwk, JwsAlgorithm::eddsa));
  // Their payloads are plain text, not claims: the verifier refuses them as such.
  TestClock clock(kRfcExp);
  JwtVerifier es512(rfc_options("ES512", kA4Jwk, clock));
  expect_error(es512, kA4Token, TokenError::malformed);
  JwtVerifier ed(rfc_options("EdDSA", kEd25519Jwk, clock));
  expect_error(ed, kEd25519Token, TokenError::malformed);
}

TEST_CASE("jwt: every algorithm verifies tokens signed with generated keys") {
  for (const char* alg : {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                          "EdDSA", "HS256", "HS384", "HS512"}) {
    CAPTURE(alg);
    Fixture f;
    const TestKey key = TestKey::generate(alg);
    f.keys = StaticKeySource::from_jwks(key.jwks("kid-" + std::string(alg)).dump());
    JwtVerifier v(f.options({alg}));
    json h = {{"alg", alg}, {"kid", "kid-" + std::string(alg)}};
    const std::string token = make_token(key, h, Fixture::payload());
    const auto now = v.try_verify_now(token);
    REQUIRE(now);
    INFO(now->detail());
    REQUIRE(now->ok());
    CHECK((*now)->subject() == "alice");
    expect_ok(v, token);
    // Without kid the verifier tries the keys that fit.
    h.erase("kid");
    expect_ok(v, make_token(key, h, Fixture::payload()));
    // The same key from PEM.
    if (key.secret().empty()) {
      f.keys = StaticKeySource::from_pem(key.public_pem(), alg, "pem");
      JwtVerifier pem(f.options({alg}));
      expect_ok(pem, make_token(key, json{{"alg", alg}, {"kid", "pem"}}, Fixture::payload()));
    }
  }
}

TEST_CASE("jwt: alg none is refused in every spelling") {
  Fixture f;
  JwtVerifier v(f.options());
  for (const char* none : {"none", "None", "NONE", "nOnE"}) {
    CAPTURE(none);
    const std::string input = signing_input(json{{"alg", none}}.dump(), Fixture::payload().dump());
    expect_error(v, input + ".", TokenError::unsupported_algorithm);
    expect_error(v, input + "." + b64url("sig"), TokenError::unsupported_algorithm);
    expect_error(v, input, TokenError::malformed);  // two segments
    auto o = f.options({"RS256", none});
    CHECK_THROWS_AS(JwtVerifier{std::move(o)}, std::invalid_argument);
  }
}

TEST_CASE("jwt: HS256 keyed with the RSA public key PEM is refused") {
  Fixture f;
  const std::string pem = f.rsa.public_pem();
  for (const json& h : {json{{"alg", "HS256"}, {"kid", "k1"}}, json{{"alg", "HS256"}}}) {
    const std::string input = signing_input(h.dump(), Fixture::payload().dump());
    const std::string forged = input + "." + b64url(hmac_sign("HS256", pem, input));
    JwtVerifier rs_only(f.options({"RS256"}));
    expect_error(rs_only, forged, TokenError::unsupported_algorithm);
    // Even a verifier that also accepts HS256 never uses an RSA key as an HMAC secret.
    JwtVerifier mixed(f.options({"RS256", "HS256"}));
    expect_error(mixed, forged, TokenError::unknown_key);
    // Nor a key loaded from that PEM.
    f.keys = StaticKeySource::from_pem(pem, {}, "k1");
    JwtVerifier mixed_pem(f.options({"RS256", "HS256"}));
    expect_error(mixed_pem, forged, TokenError::unknown_key);
    f.keys = StaticKeySource::from_jwks(f.rsa.jwks("k1").dump());
  }
}

TEST_CASE("jwt: tampering and wrong keys break the signature") {
  Fixture f;
  JwtVerifier v(f.options());
  const std::string good = f.token();
  expect_ok(v, good);
  const auto parts = split(good);

  json h = Fixture::header();
  h["typ"] = "at+jwt";
  expect_error(v, b64url(h.dump()) + "." + parts[1] + "." + parts[2], TokenError::bad_signature);
  json p = Fixture::payload();
  p["sub"] = "admin";
  expect_error(v, parts[0] + "." + b64url(p.dump()) + "." + parts[2], TokenError::bad_signature);
  std::string sig = *base64url_decode(parts[2]);
  sig[7] = static_cast<char>(sig[7] ^ 1);
  expect_error(v, parts[0] + "." + parts[1] + "." + b64url(sig), TokenError::bad_signature);
  expect_error(v, parts[0] + "." + parts[1] + ".", TokenError::bad_signature);

  const TestKey other = TestKey::generate("RS256", /*fresh=*/true);
  expect_error(v, make_token(other, Fixture::header(), Fixture::payload()), TokenError::bad_signature);
  json no_kid = Fixture::header();
  no_kid.erase("kid");
  expect_error(v, make_token(other, no_kid, Fixture::payload()), TokenError::bad_signature);
}

TEST_CASE("jwt: kid injection finds no key") {
  Fixture f;
  JwtVerifier v(f.options());
  for (const std::string& kid : {std::string("../../etc/passwd"), std::string("' OR 1=1 --"), std::string("\0", 1),
                                std::string("k1\0", 3), std::string("K1"), std::string("")}) {
    json h = Fixture::header();
    h["kid"] = kid;
    const VerifyResult r = verify_both(v, f.token(h));
    CHECK(r.error() == make_error_code(TokenError::unknown_key));
    CHECK(r.detail().find('\0') == std::string::npos);  // logged escaped
  }
  json h = Fixture::header();
  h["kid"] = 7;
  expect_error(v, f.token(h), TokenError::malformed);
}

TEST_CASE("jwt: headers that bring their own key or extensions are refused") {
  Fixture f;
  JwtVerifier v(f.options());
  const TestKey attacker = TestKey::generate("RS256", /*fresh=*/true);
  const json variants[] = {
      {{"alg", "RS256"}, {"jwk", attacker.public_jwk()}},
      {{"alg", "RS256"}, {"kid", "k1"}, {"jwk", attacker.public_jwk()}},
      {{"alg", "RS256"}, {"jku", "https://attacker.test/jwks.json"}},
      {{"alg", "RS256"}, {"x5u", "https://attacker.test/cert.pem"}},
      {{"alg", "RS256"}, {"x5c", {"MIIB"}}},
      {{"alg", "RS256"}, {"kid", "k1"}, {"crit", {"exp"}}, {"exp", kNow + 600}},
      {{"alg", "RS256"}, {"kid", "k1"}, {"crit", json::array()}},
      {{"alg", "RS256"}, {"kid", "k1"}, {"b64", false}, {"crit", {"b64"}}},
      {{"alg", "RS256"}, {"kid", "k1"}, {"b64", false}},
  };
  for (const json& h : variants) {
    CAPTURE(h.dump());
    expect_error(v, make_token(attacker, h, Fixture::payload()), TokenError::forbidden_header);
    expect_error(v, f.token(h), TokenError::forbidden_header);  // even with a good signature
  }
}

TEST_CASE("jwt: headers seen before are remembered, and their tokens still fully checked") {
  Fixture f;
  JwtVerifierOptions o = f.options();
  o.cache.enabled = false;  // every call below goes through the header
  JwtVerifier v(std::move(o));
  const std::string good = f.token();
  const auto parts = split(good);
  for (int i = 0; i < 3; ++i) expect_ok(v, good);
  // The same header text over another payload: the signature still decides.
  json p = Fixture::payload();
  p["sub"] = "admin";
  expect_error(v, parts[0] + "." + b64url(p.dump()) + "." + parts[2], TokenError::bad_signature);
  // Refusals are not remembered.
  json h = Fixture::header();
  h["jku"] = "https://attacker.test/jwks.json";
  for (int i = 0; i < 2; ++i) expect_error(v, f.token(h), TokenError::forbidden_header);
  // More distinct headers than are remembered; the first is then read again and still works.
  for (int i = 0; i < 20; ++i) {
    json other = Fixture::header();
    other["kid"] = "k" + std::to_string(100 + i);
    expect_error(v, f.token(other), TokenError::unknown_key);
  }
  expect_ok(v, good);
  // What a header says depends on the verifier's options: another verifier reads it afresh.
  JwtVerifier es(f.options({"ES256"}));
  expect_error(es, good, TokenError::unsupported_algorithm);
}

TEST_CASE("jwt: time claims are enforced with leeway") {
  Fixture f;
  JwtVerifier v(f.options());
  auto with = [&](const char* name, json value) {
    json p = Fixture::payload();
    p[name] = std::move(value);
    return f.token(Fixture::header(), p);
  };
  expect_error(v, with("exp", kNow - 100), TokenError::expired);
  expect_error(v, with("exp", kNow - 30), TokenError::expired);  // exp + leeway == now
  expect_ok(v, with("exp", kNow - 10));                           // inside the leeway
  expect_error(v, with("nbf", kNow + 100), TokenError::not_yet_valid);
  expect_ok(v, with("nbf", kNow + 10));
  expect_error(v, with("iat", kNow + 100), TokenError::not_yet_valid);
  expect_ok(v, with("iat", kNow + 10));
  expect_error(v, with("exp", "1700000600"), TokenError::malformed);
  expect_error(v, with("nbf", true), TokenError::malformed);
  expect_error(v, with("iat", json::array()), TokenError::malformed);
  expect_ok(v, with("exp", 1700000600.5));
  json no_exp = Fixture::payload();
  no_exp.erase("exp");
  expect_error(v, f.token(Fixture::header(), no_exp), TokenError::missing_claim);
  auto o = f.options();
  o.require_exp = false;
  JwtVerifier lenient(std::move(o));
  expect_ok(lenient, f.token(Fixture::header(), no_exp));
  // A number too large for a double is not a time.
  const std::string huge_exp = R"({"iss":"https://issuer.test","aud":"api","exp":1e400})";
  expect_error(v, make_token_text(f.rsa, Fixture::header().dump(), huge_exp), TokenError::malformed);
}

TEST_CASE("jwt: issuer and audience must match the configuration") {
  Fixture f;
  JwtVerifier v(f.options());
  json p = Fixture::payload();
  p["iss"] = "https://evil.test";
  expect_error(v, f.token(Fixture::header(), p), TokenError::wrong_issuer);
  p["iss"] = "https://issuer.test/";
  expect_error(v, f.token(Fixture::header(), p), TokenError::wrong_issuer);
  p.erase("iss");
  expect_error(v, f.token(Fixture::header(), p), TokenError::missing_claim);
  p = Fixture::payload();
  p["iss"] = json::array({kIssuer});
  expect_error(v, f.token(Fixture::header(), p), TokenError::malformed);

  p = Fixture::payload();
  p["aud"] = "other";
  expect_error(v, f.token(Fixture::header(), p), TokenError::wrong_audience);
  p["aud"] = json::array({"other", "api"});
  expect_ok(v, f.token(Fixture::header(), p));
  p["aud"] = json::array();
  expect_error(v, f.token(Fixture::header(), p), TokenError::wrong_audience);
  p["aud"] = json::array({"api", 3});
  expect_error(v, f.token(Fixture::header(), p), TokenError::malformed);
  p.erase("aud");
  expect_error(v, f.token(Fixture::header(), p), TokenError::missing_claim);
  auto o = f.options();
  o.audiences.clear();
  JwtVerifier any_audience(std::move(o));
  expect_ok(any_audience, f.token(Fixture::header(), p));
}

TEST_CASE("jwt: each issuer's tokens are checked with that issuer's keys only") {
  Fixture f;
  const TestKey other = TestKey::generate("ES256");
  auto o = f.options({"RS256", "ES256"});
  o.issuers.push_back({"https://other.test", StaticKeySource::from_jwks(other.jwks("o1").dump())});
  JwtVerifier v(std::move(o));
  json p = Fixture::payload();
  p["iss"] = "https://other.test";
  expect_ok(v, make_token(other, json{{"alg", "ES256"}, {"kid", "o1"}}, p));
  // The other issuer's key cannot vouch for the first issuer, with or without a kid.
  expect_error(v, make_token(other, json{{"alg", "ES256"}, {"kid", "o1"}}, Fixture::payload()),
               TokenError::unknown_key);
  expect_error(v, make_token(other, json{{"alg", "ES256"}}, Fixture::payload()), TokenError::unknown_key);
  // And the first issuer's key cannot vouch for the other.
  expect_error(v, f.token(Fixture::header(), p), TokenError::unknown_key);
}

TEST_CASE("jwt: DER-encoded ECDSA signatures are refused") {
  Fixture f;
  const TestKey ec = TestKey::generate("ES256");
  f.keys = StaticKeySource::from_jwks(ec.jwks("e1").dump());
  JwtVerifier v(f.options({"ES256"}));
  const json h = {{"alg", "ES256"}, {"kid", "e1"}};
  expect_ok(v, make_token_text(ec, h.dump(), Fixture::payload().dump()));
  expect_error(v, make_token_text(ec, h.dump(), Fixture::payload().dump(), /*der=*/true), TokenError::bad_signature);
  // r||s must be exactly twice the coordinate size: zero-padded or truncated forms of a valid
  // signature carry the same numbers but are different tokens, so they are refused.
  const std::string input = signing_input(h.dump(), Fixture::payload().dump());
  const std::string raw = ec.sign(input);
  REQUIRE(raw.size() == 64);
  const std::string padded = std::string(1, '\0') + raw.substr(0, 32) + std::string(1, '\0') + raw.substr(32);
  expect_error(v, input + "." + b64url(padded), TokenError::bad_signature);
  expect_error(v, input + "." + b64url(raw + std::string(2, '\0')), TokenError::bad_signature);
  expect_error(v, input + "." + b64url(raw.substr(0, 62)), TokenError::bad_signature);
}

TEST_CASE("jwt: base64url must be canonical, unpadded and in the URL alphabet") {
  Fixture f;
  JwtVerifier v(f.options());
  const std::string good = f.token();
  const auto parts = split(good);
  const std::string head = parts[0] + "." + parts[1] + ".";
  // A 256-byte signature ends in two characters; the last carries 4 unused bits.
  REQUIRE(parts[2].size() % 4 == 2);
  std::string trailing = parts[2];
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  trailing.back() = alphabet[alphabet.find(trailing.back()) | 1];
  expect_error(v, head + trailing, TokenError::malformed);
  expect_error(v, head + parts[2] + "==", TokenError::malformed);
  expect_error(v, good + "=", TokenError::malformed);
  expect_error(v, parts[0] + "=." + parts[1] + "." + parts[2], TokenError::malformed);
  std::string standard = parts[2];
  for (char& c : standard) c = c == '-' ? '+' : c == '_' ? '/' : c;
  if (standard != parts[2]) expect_error(v, head + standard, TokenError::malformed);
  expect_error(v, head + parts[2].substr(0, 10) + " " + parts[2].substr(10), TokenError::malformed);
  expect_error(v, head + parts[2] + "\n", TokenError::malformed);
  expect_error(v, " " + good, TokenError::malformed);
}

TEST_CASE("jwt: only three segments make a token") {
  Fixture f;
  JwtVerifier v(f.options());
  const std::string good = f.token();
  expect_error(v, good + ".", TokenError::malformed);
  expect_error(v, good + "." + b64url("x"), TokenError::malformed);
  // JWE compact serialization has five parts.
  expect_error(v, b64url(R"({"alg":"RSA-OAEP","enc":"A256GCM"})") + ".a.b.c.d", TokenError::malformed);
  expect_error(v, "", TokenError::malformed);
  expect_error(v, "..", TokenError::malformed);
  expect_error(v, "abc", TokenError::malformed);
}

TEST_CASE("jwt: oversized tokens are refused before parsing") {
  Fixture f;
  JwtVerifier v(f.options());
  json p = Fixture::payload();
  p["padding"] = std::string(9000, 'x');
  const std::string big = f.token(Fixture::header(), p);
  REQUIRE(big.size() > 8192);
  expect_error(v, big, TokenError::token_too_large);
  expect_error(v, std::string(100'000, 'a'), TokenError::token_too_large);
  auto o = f.options();
  o.max_token_bytes = 20'000;
  JwtVerifier roomy(std::move(o));
  expect_ok(roomy, big);
}

TEST_CASE("jwt: duplicate JSON member names are refused") {
  Fixture f;
  JwtVerifier v(f.options({"RS256", "HS256"}));
  const std::string payload = Fixture::payload().dump();
  expect_error(v, make_token_text(f.rsa, R"({"alg":"RS256","kid":"k1","alg":"HS256"})", payload), TokenError::malformed);
  expect_error(v, make_token_text(f.rsa, R"({"alg":"RS256","kid":"k1","kid":"k1"})", payload), TokenError::malformed);
  const std::string header = Fixture::header().dump();
  const std::string dup_sub = R"({"iss":"https://issuer.test","aud":"api","exp":1700000600,"sub":"alice","sub":"admin"})";
  expect_error(v, make_token_text(f.rsa, header, dup_sub), TokenError::malformed);
  const std::string nested =
      R"({"iss":"https://issuer.test","aud":"api","exp":1700000600,"realm":{"roles":["a"],"roles":["admin"]}})";
  expect_error(v, make_token_text(f.rsa, header, nested), TokenError::malformed);
  // The same names in different objects are fine.
  const std::string distinct =
      R"({"iss":"https://issuer.test","aud":"api","exp":1700000600,"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"x":2}]})";
  expect_ok(v, make_token_text(f.rsa, header, distinct));
}

TEST_CASE("jwt: header and payload must be JSON objects") {
  Fixture f;
  JwtVerifier v(f.options());
  const std::string header = Fixture::header().dump();
  for (const char* payload : {"[1,2]", "\"claims\"", "42", "null", "", "{", R"({"iss":"x"} trailing)",
                              "{\"iss\":\"\xff\"}"}) {
    CAPTURE(payload);
    expect_error(v, make_token_text(f.rsa, header, payload), TokenError::malformed);
  }
  for (const char* bad_header : {"[\"RS256\"]", "\"RS256\"", "{}", R"({"alg":256})", "{alg:RS256}"}) {
    CAPTURE(bad_header);
    expect_error(v, make_token_text(f.rsa, bad_header, Fixture::payload().dump()), TokenError::malformed);
  }
  std::string deep = R"({"iss":"https://issuer.test","aud":"api","exp":1700000600,"d":)";
  deep += std::string(100, '[') + std::string(100, ']') + "}";
  expect_error(v, make_token_text(f.rsa, header, deep), TokenError::malformed);
}

TEST_CASE("jwt: algorithms outside the configured list are refused") {
  Fixture f;
  JwtVerifier v(f.options({"RS256"}));
  const TestKey ec = TestKey::generate("ES256");
  expect_error(v, make_token(ec, json{{"alg", "ES256"}, {"kid", "k1"}}, Fixture::payload()),
               TokenError::unsupported_algorithm);
  expect_error(v, make_token(f.rsa.as("PS256"), json{{"alg", "PS256"}, {"kid", "k1"}}, Fixture::payload()),
               TokenError::unsupported_algorithm);
  expect_error(v, make_token(f.rsa, json{{"alg", "rs256"}, {"kid", "k1"}}, Fixture::payload()),
               TokenError::unsupported_algorithm);
  expect_error(v, make_token(f.rsa, json{{"alg", "RS256 "}, {"kid", "k1"}}, Fixture::payload()),
               TokenError::unsupported_algorithm);
  // A key pinned to RS256 does not verify PS256, even when PS256 is allowed.
  f.keys = StaticKeySource::from_jwks(json{{"keys", {f.rsa.public_jwk("k1")}}}.dump());
  JwtVerifier both(f.options({"RS256", "PS256"}));
  expect_error(both, make_token(f.rsa.as("PS256"), json{{"alg", "PS256"}, {"kid", "k1"}}, Fixture::payload()),
               TokenError::unknown_key);
}

TEST_CASE("jwt: typ and required claims are checked when configured") {
  Fixture f;
  auto o = f.options();
  o.typ = "at+jwt";
  o.required_claims = {"sub", "client_id"};
  JwtVerifier v(std::move(o));
  json p = Fixture::payload();
  p["client_id"] = "web";
  json h = Fixture::header();
  h["typ"] = "application/AT+JWT";
  expect_ok(v, f.token(h, p));
  h["typ"] = "at+jwt";
  expect_ok(v, f.token(h, p));
  h["typ"] = "JWT";
  expect_error(v, f.token(h, p), TokenError::wrong_type);
  h.erase("typ");
  expect_error(v, f.token(h, p), TokenError::wrong_type);
  h["typ"] = "at+jwt";
  p.erase("client_id");
  expect_error(v, f.token(h, p), TokenError::missing_claim);
  p["client_id"] = nullptr;
  expect_error(v, f.token(h, p), TokenError::missing_claim);
  p["client_id"] = "web";
  p["sub"] = 42;
  expect_error(v, f.token(h, p), TokenError::malformed);
}

TEST_CASE("jwt: options are validated at construction") {
  Fixture f;
  auto bad = [&](auto edit) {
    auto o = f.options();
    edit(o);
    CHECK_THROWS_AS(JwtVerifier{std::move(o)}, std::invalid_argument);
  };
  bad([](JwtVerifierOptions& o) { o.algorithms.clear(); });
  bad([](JwtVerifierOptions& o) { o.algorithms = {"HS1"}; });
  bad([](JwtVerifierOptions& o) { o.issuers.clear(); });
  bad([](JwtVerifierOptions& o) { o.issuers[0].keys = nullptr; });
  bad([](JwtVerifierOptions& o) { o.issuers[0].issuer.clear(); });
  bad([](JwtVerifierOptions& o) { o.issuers.push_back(o.issuers[0]); });
  bad([](JwtVerifierOptions& o) { o.clock = nullptr; });
  bad([](JwtVerifierOptions& o) { o.leeway = std::chrono::seconds(-1); });
  bad([](JwtVerifierOptions& o) { o.max_token_bytes = 0; });
  bad([](JwtVerifierOptions& o) { o.typ = ""; });
  bad([](JwtVerifierOptions& o) { o.audiences = {""}; });
}

TEST_CASE("jwt: the cache returns the same claims and re-checks expiry on every hit") {
  Fixture f;
  JwtVerifier v(f.options());
  json p = Fixture::payload();
  p["exp"] = kNow + 60;
  const std::string token = f.token(Fixture::header(), p);
  const auto first = v.try_verify_now(token);
  REQUIRE(first);
  REQUIRE(first->ok());
  const auto second = v.try_verify_now(token);
  REQUIRE(second);
  REQUIRE(second->ok());
  CHECK((*second)->same_payload(first->value()));
  CHECK(v.stats().cache_hits == 1);
  CHECK(v.stats().cache_entries == 1);
  const VerifyResult async = run_verify(v, token);
  REQUIRE(async.ok());
  CHECK(async->same_payload(first->value()));

  f.clock.advance(std::chrono::seconds(60 + 31));
  const auto expired = v.try_verify_now(token);
  REQUIRE(expired);
  CHECK(expired->error() == make_error_code(TokenError::expired));
  CHECK(expired->detail().find("cached") != std::string::npos);
  CHECK(v.stats().cache_entries == 0);
  expect_error(v, token, TokenError::expired);
}

TEST_CASE("jwt: failures are not cached, the cache is bounded and per verifier") {
  Fixture f;
  auto o = f.options();
  o.cache.max_entries = 8;
  JwtVerifier v(std::move(o));
  json p = Fixture::payload();
  p["aud"] = "other";
  const std::string wrong_aud = f.token(Fixture::header(), p);
  expect_error(v, wrong_aud, TokenError::wrong_audience);
  expect_error(v, wrong_aud, TokenError::wrong_audience);
  CHECK(v.stats().cache_entries == 0);
  for (int i = 0; i < 50; ++i) {
    json q = Fixture::payload();
    q["jti"] = std::to_string(i);
    expect_ok(v, f.token(Fixture::header(), q));
  }
  CHECK(v.stats().cache_entries <= 8);
  CHECK(v.stats().cache_entries > 0);

  // A token cached by one verifier means nothing to another.
  const std::string token = f.token();
  expect_ok(v, token);
  auto other_options = f.options();
  other_options.audiences = {"billing"};
  JwtVerifier other(std::move(other_options));
  expect_error(other, token, TokenError::wrong_audience);

  auto off = f.options();
  off.cache.enabled = false;
  JwtVerifier uncached(std::move(off));
  expect_ok(uncached, token);
  expect_ok(uncached, token);
  CHECK(uncached.stats().cache_entries == 0);
  CHECK(uncached.stats().cache_hits == 0);
}

TEST_CASE("jwt: cached tokens are verified again after max_age") {
  Fixture f;
  auto o = f.options();
  o.cache.max_age = std::chrono::seconds(10);
  JwtVerifier v(std::move(o));
  const std::string token = f.token();
  expect_ok(v, token);
  const auto hits = v.stats().cache_hits;
  f.clock.advance(std::chrono::seconds(11));
  expect_ok(v, token);
  CHECK(v.stats().cache_entries == 1);
  CHECK(v.stats().cache_hits >= hits);
}

namespace {

// Stands in for a remote JWKS: current() may lack keys that a refresh brings.
class RotatingKeySource final : public KeySource {
 public:
  std::shared_ptr<const JwkSet> current() const override {
    std::lock_guard lock(mutex_);
    return current_;
  }
  asio::awaitable<std::shared_ptr<const JwkSet>> refresh_for_unknown_kid(std::string kid) const override {
    ++refreshes;
    last_kid = kid;
    if (throw_on_refresh) throw std::runtime_error("connection refused");
    std::lock_guard lock(mutex_);
    if (next_) current_ = next_;
    co_return current_;
  }
  void set_current(std::shared_ptr<const JwkSet> s) {
    std::lock_guard lock(mutex_);
    current_ = std::move(s);
  }
  void set_next(std::shared_ptr<const JwkSet> s) {
    std::lock_guard lock(mutex_);
    next_ = std::move(s);
  }

  mutable std::atomic<int> refreshes{0};
  mutable std::string last_kid;
  bool throw_on_refresh = false;

 private:
  mutable std::mutex mutex_;
  mutable std::shared_ptr<const JwkSet> current_;
  std::shared_ptr<const JwkSet> next_;
};

}  // namespace

TEST_CASE("jwt: an unknown kid asks the key source for a refresh on the async path") {
  Fixture f;
  auto source = std::make_shared<RotatingKeySource>();
  const TestKey old_key = TestKey::generate("ES256", /*fresh=*/true);
  const TestKey new_key = TestKey::generate("ES256", /*fresh=*/true);
  source->set_current(std::make_shared<const JwkSet>(JwkSet::from_json(old_key.jwks("old"))));
  JwtVerifierOptions o = f.options({"ES256"});
  o.issuers = {{kIssuer, source}};
  JwtVerifier v(std::move(o));

  const std::string old_token = make_token(old_key, json{{"alg", "ES256"}, {"kid", "old"}}, Fixture::payload());
  const auto now = v.try_verify_now(old_token);
  REQUIRE(now);
  CHECK(now->ok());

  const std::string new_token = make_token(new_key, json{{"alg", "ES256"}, {"kid", "new"}}, Fixture::payload());
  CHECK_FALSE(v.try_verify_now(new_token));  // needs I/O
  CHECK(source->refreshes == 0);
  json rotated = new_key.jwks("new");
  source->set_next(std::make_shared<const JwkSet>(JwkSet::from_json(rotated)));
  const VerifyResult r = run_verify(v, new_token);
  INFO(r.detail());
  CHECK(r.ok());
  CHECK(source->refreshes == 1);
  CHECK(source->last_kid == "new");
  // Now cached and known: no more refreshes.
  CHECK(v.try_verify_now(new_token));
  CHECK(run_verify(v, new_token).ok());
  CHECK(source->refreshes == 1);
  // The old key left the set: its cached token is verified again and refused.
  const VerifyResult gone = run_verify(v, old_token);
  CHECK(gone.error() == make_error_code(TokenError::unknown_key));
  CHECK(source->refreshes == 2);

  // A kid nobody knows, after a refresh.
  const std::string bogus = make_token(new_key, json{{"alg", "ES256"}, {"kid", "bogus"}}, Fixture::payload());
  CHECK(run_verify(v, bogus).error() == make_error_code(TokenError::unknown_key));
  source->throw_on_refresh = true;
  const VerifyResult down = run_verify(v, bogus);
  CHECK(down.error() == make_error_code(TokenError::key_source_unavailable));
  CHECK(down.detail().find("connection refused") != std::string::npos);
}

TEST_CASE("jwt: a key source without keys yet is refreshed, and reported when it stays empty") {
  Fixture f;
  auto source = std::make_shared<RotatingKeySource>();
  JwtVerifierOptions o = f.options({"ES256"});
  o.issuers = {{kIssuer, source}};
  JwtVerifier v(std::move(o));
  const TestKey key = TestKey::generate("ES256");
  const std::string token = make_token(key, json{{"alg", "ES256"}}, Fixture::payload());
  CHECK_FALSE(v.try_verify_now(token));
  CHECK(run_verify(v, token).error() == make_error_code(TokenError::key_source_unavailable));
  CHECK(source->last_kid.empty());
  source->set_next(std::make_shared<const JwkSet>(JwkSet::from_json(key.jwks("any"))));
  CHECK(run_verify(v, token).ok());
}

TEST_CASE("jwt: verify() owns its copy of the token") {
  Fixture f;
  JwtVerifier v(f.options());
  asio::io_context io;
  std::optional<VerifyResult> out;
  {
    std::string token = f.token();
    auto work = v.verify(token);
    token.assign(token.size(), 'x');  // the caller's buffer changes before the coroutine runs
    asio::co_spawn(io, std::move(work), [&](std::exception_ptr, VerifyResult r) { out.emplace(std::move(r)); });
  }
  io.run();
  REQUIRE(out);
  CHECK(out->ok());
}

TEST_CASE("jwt: one verifier serves many threads") {
  Fixture f;
  JwtVerifier v(f.options());
  std::vector<std::string> tokens;
  for (int i = 0; i < 16; ++i) {
    json p = Fixture::payload();
    p["jti"] = std::to_string(i);
    tokens.push_back(f.token(Fixture::header(), p));
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const auto r = v.try_verify_now(tokens[static_cast<std::size_t>(i + t) % tokens.size()]);
        if (!r || !r->ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  CHECK(v.stats().cache_entries == tokens.size());
}

TEST_CASE("jwt: claims give typed access") {
  Fixture f;
  JwtVerifier v(f.options());
  json p = Fixture::payload();
  p["realm_access"] = {{"roles", {"admin", "user"}}};
  p["a/b"] = {{"m~n", 5}};
  p["scp"] = {"ignored"};
  p["ratio"] = 0.5;
  p["big"] = 9007199254740993ULL;
  p["flag"] = false;
  const VerifyResult r = run_verify(v, f.token(Fixture::header(), p));
  REQUIRE(r.ok());
  const Claims& c = r.value();
  CHECK(c.subject() == "alice");
  CHECK(c.issuer() == kIssuer);
  CHECK(c.audiences() == std::vector<std::string>{"api"});
  CHECK(c.scopes() == std::vector<std::string>{"read", "write"});
  CHECK(c.has_scope("write"));
  CHECK_FALSE(c.has_scope("admin"));
  CHECK(c.at("/realm_access/roles").strings() == std::vector<std::string>{"admin", "user"});
  CHECK(c.at("/realm_access/roles/1").string() == "user");
  CHECK_FALSE(c.at("/realm_access/roles/2"));
  CHECK_FALSE(c.at("/realm_access/roles/01"));
  CHECK_FALSE(c.at("/realm_access/roles/-"));
  CHECK_FALSE(c.at("realm_access"));
  CHECK(c.at("/a~1b/m~0n").integer() == 5);
  CHECK_FALSE(c.at("/a~2b"));
  CHECK(c.at("").is_object());
  CHECK(c.number("ratio") == 0.5);
  CHECK_FALSE(c.integer("ratio"));
  CHECK(c.integer("big") == 9007199254740993LL);
  CHECK(c.boolean("flag") == false);
  CHECK_FALSE(c.string("flag"));
  CHECK(c.has("flag"));
  CHECK_FALSE(c.has("missing"));
  CHECK(c.strings("sub") == std::vector<std::string>{"alice"});
  CHECK(c.strings("missing").empty());
  CHECK(c.expires_at() == Claims::time_point(std::chrono::seconds(kNow + 600)));
  CHECK(c.issued_at() == Claims::time_point(std::chrono::seconds(kNow)));
  CHECK_FALSE(c.not_before());
  CHECK(c.get("realm_access").get("roles").is_array());
  CHECK(json::parse(c.dump()) == p);

  Claims scp(json{{"scp", {"a", "b"}}, {"exp", 1e300}});
  CHECK(scp.scopes() == std::vector<std::string>{"a", "b"});
  CHECK(scp.expires_at() == Claims::time_point::max());
  CHECK(Claims(json{{"scp", "x  y"}}).scopes() == std::vector<std::string>{"x", "y"});
  CHECK(Claims().scopes().empty());
  CHECK_FALSE(Claims().has("sub"));
  CHECK_THROWS_AS(Claims(json::array()), std::invalid_argument);
}

TEST_CASE("jwt: token errors form the gatehouse.token category") {
  const std::error_code ec = TokenError::expired;
  CHECK(ec.category().name() == std::string("gatehouse.token"));
  CHECK(ec == make_error_code(TokenError::expired));
  CHECK(ec != make_error_code(TokenError::bad_signature));
  CHECK(ec.message() == "token has expired");
  for (int i = 1; i <= static_cast<int>(TokenError::internal); ++i) {
    CHECK_FALSE(make_error_code(static_cast<TokenError>(i)).message().empty());
    CHECK(make_error_code(static_cast<TokenError>(i)).message() != "unknown token error");
  }
  VerifyResult defaulted;
  CHECK_FALSE(defaulted.ok());
  CHECK(defaulted.error() == make_error_code(TokenError::internal));
}
