// TokenMinter: internal identity tokens that the project's own verifier (and so a service) accepts.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/base64url.hpp"
#include "auth/jwk_thumbprint.hpp"
#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/auth/key_source.hpp"
#include "gatehouse/auth/token_minter.hpp"
#include "gatehouse/testing.hpp"
#include "support/temp_dir.hpp"

using namespace gatehouse::auth;
using nlohmann::json;
using namespace std::chrono_literals;
namespace gt = gatehouse::testing;

namespace {

const std::string kIssuer = "https://gatehouse.internal";

struct Parts {
  json header, payload;
  std::string signature;  // raw bytes
};

Parts parts_of(const std::string& token) {
  const auto d1 = token.find('.');
  const auto d2 = token.find('.', d1 + 1);
  REQUIRE(d1 != std::string::npos);
  REQUIRE(d2 != std::string::npos);
  Parts p;
  p.header = json::parse(base64url_decode(token.substr(0, d1)).value());
  p.payload = json::parse(base64url_decode(token.substr(d1 + 1, d2 - d1 - 1)).value());
  p.signature = base64url_decode(token.substr(d2 + 1)).value();
  return p;
}

// The project's own verifier, configured as a service would be: the minter's JWKS, its issuer.
std::unique_ptr<JwtVerifier> verifier_for(const TokenMinter& m, const gt::FakeClock& clock,
                                          std::vector<std::string> audiences = {}) {
  JwtVerifierOptions o;
  o.algorithms = {m.options().algorithm};
  o.issuers = {{m.options().issuer, StaticKeySource::from_jwks(m.jwks_json())}};
  o.audiences = std::move(audiences);
  o.typ = "JWT";
  o.leeway = 0s;
  o.required_claims = {"jti", "iat"};
  o.clock = &clock;
  o.cache.enabled = false;
  return std::make_unique<JwtVerifier>(std::move(o));
}

VerifyResult verify(const JwtVerifier& v, const std::string& token) {
  auto r = v.try_verify_now(token);
  REQUIRE(r.has_value());
  return std::move(*r);
}

Claims alice() {
  return Claims(json{{"iss", "https://id.example"}, {"sub", "alice"}, {"scope", "orders:read orders:write"},
                     {"tenant", "acme"}, {"roles", {"admin", "ops"}}});
}

std::shared_ptr<EVP_PKEY> keygen(const char* type, const char* curve = nullptr) {
  EVP_PKEY* k = curve ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, curve)
                      : std::string_view(type) == "RSA" ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, std::size_t{2048})
                                                        : EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  REQUIRE(k);
  return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free);
}

std::string private_pem(EVP_PKEY* k) {
  std::unique_ptr<BIO, int (*)(BIO*)> bio(BIO_new(BIO_s_mem()), BIO_free);
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string public_pem(EVP_PKEY* k) {
  std::unique_ptr<BIO, int (*)(BIO*)> bio(BIO_new(BIO_s_mem()), BIO_free);
  REQUIRE(PEM_write_bio_PUBKEY(bio.get(), k) == 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string invalid_argument_of(TokenMinterOptions o) {
  try {
    TokenMinter m(std::move(o));
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  FAIL("no std::invalid_argument");
  return {};
}

}  // namespace

TEST_CASE("minted tokens verify with the minter's own JWKS, for ES256 and EdDSA") {
  for (const std::string alg : {"ES256", "EdDSA"}) {
    CAPTURE(alg);
    gt::FakeClock clock;
    TokenMinterOptions o;
    o.algorithm = alg;
    o.issuer = kIssuer;
    o.audience = "orders-svc";
    o.lifetime = 120s;
    const TokenMinter m(o);
    CHECK(m.algorithm() == (alg == "ES256" ? JwsAlgorithm::es256 : JwsAlgorithm::eddsa));

    const std::string token = m.mint(alice(), clock.now());
    const auto v = verifier_for(m, clock, {"orders-svc"});
    const VerifyResult r = verify(*v, token);
    REQUIRE_MESSAGE(r.ok(), r.error().message() << ": " << r.detail());
    CHECK(r.value().subject() == "alice");
    CHECK(r.value().scopes() == std::vector<std::string>{"orders:read", "orders:write"});

    const Parts p = parts_of(token);
    CHECK(p.header == json{{"alg", alg}, {"kid", m.kid()}, {"typ", "JWT"}});
    CHECK(p.signature.size() == 64);  // ES256 raw r||s, or Ed25519
    const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count();
    CHECK(p.payload.at("iss") == kIssuer);
    CHECK(p.payload.at("aud") == "orders-svc");
    CHECK(p.payload.at("sub") == "alice");
    CHECK(p.payload.at("scope") == "orders:read orders:write");
    CHECK(p.payload.at("iat") == now_s);
    CHECK(p.payload.at("exp") == now_s + 120);
    CHECK_FALSE(p.payload.contains("nbf"));
    CHECK_FALSE(p.payload.contains("tenant"));  // not in copy_claims
    const std::string jti = p.payload.at("jti");
    CHECK(base64url_decode(jti).value().size() == 16);

    // Another audience or issuer is refused; so is the token once its lifetime is over.
    CHECK(verify(*verifier_for(m, clock, {"billing"}), token).error() == TokenError::wrong_audience);
    clock.advance(120s);
    CHECK(verify(*v, token).error() == TokenError::expired);

    // A token from another minter (another generated key, same issuer) does not verify here.
    const TokenMinter other(o);
    CHECK(other.kid() != m.kid());
    clock.advance(-120s);
    CHECK_FALSE(verify(*v, other.mint(alice(), clock.now())).ok());
  }
}

TEST_CASE("copy_claims chooses what the service learns; nbf on request; no audience by default") {
  gt::FakeClock clock;
  TokenMinterOptions o;
  o.algorithm = "EdDSA";
  o.issuer = kIssuer;
  o.copy_claims = {"sub", "tenant", "roles", "missing"};
  o.not_before = true;
  const TokenMinter m(o);
  const Parts p = parts_of(m.mint(alice(), clock.now()));
  CHECK(p.payload.at("tenant") == "acme");
  CHECK(p.payload.at("roles") == json{"admin", "ops"});
  CHECK_FALSE(p.payload.contains("scope"));
  CHECK_FALSE(p.payload.contains("missing"));
  CHECK_FALSE(p.payload.contains("aud"));
  CHECK(p.payload.at("nbf") == p.payload.at("iat"));
  CHECK(p.payload.at("exp").get<std::int64_t>() - p.payload.at("iat").get<std::int64_t>() == 60);  // default
  // The source's iss is never copied: the minter is the issuer.
  CHECK(p.payload.at("iss") == kIssuer);
  CHECK(verify(*verifier_for(m, clock), m.mint(alice(), clock.now())).ok());
}

TEST_CASE("a minted token never outlives the credential it stands for") {
  gt::FakeClock clock;
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count();
  const TokenMinter m({.issuer = kIssuer, .lifetime = 600s});
  const Claims short_lived(json{{"sub", "bob"}, {"exp", now_s + 20}});
  CHECK(parts_of(m.mint(short_lived, clock.now())).payload.at("exp") == now_s + 20);
  const Claims long_lived(json{{"sub", "bob"}, {"exp", now_s + 6000}});
  CHECK(parts_of(m.mint(long_lived, clock.now())).payload.at("exp") == now_s + 600);
}

TEST_CASE("kid is the RFC 7638 thumbprint of the public key") {
  // RFC 7638 section 3.1.
  const json rsa = {{"kty", "RSA"},
                    {"n", "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCi"
                          "FV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c"
                          "7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF4"
                          "4-csFCur-kEgU8awapJzKnqDKgw"},
                    {"e", "AQAB"},
                    {"alg", "RS256"},
                    {"kid", "2011-04-29"}};
  CHECK(jwk_thumbprint(rsa) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  CHECK_THROWS_AS(jwk_thumbprint(json{{"kty", "EC"}, {"crv", "P-256"}, {"x", "AA"}}), std::invalid_argument);

  // RFC 8037 appendix A.1 (the Ed25519 private key) and A.3 (its thumbprint): a minter given that
  // key names it with that thumbprint and publishes the public half.
  const std::string d = base64url_decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").value();
  std::shared_ptr<EVP_PKEY> key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(d.data()), d.size()),
      EVP_PKEY_free);
  REQUIRE(key);
  const TokenMinter m({.algorithm = "EdDSA", .key_pem = private_pem(key.get()), .issuer = kIssuer});
  CHECK(m.kid() == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
  CHECK(m.options().key_pem.empty());  // the private key is not kept in the options
  const json jwks = json::parse(m.jwks_json());
  CHECK(jwks == json{{"keys",
                      {{{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
                        {"kid", "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"}, {"alg", "EdDSA"}, {"use", "sig"}}}}});

  // A generated ES256 key: the kid is the thumbprint of the published JWK, on every call.
  const TokenMinter es({.issuer = kIssuer});
  const json ejwk = json::parse(es.jwks_json()).at("keys").at(0);
  CHECK(ejwk.at("kty") == "EC");
  CHECK(ejwk.at("crv") == "P-256");
  CHECK(ejwk.at("alg") == "ES256");
  CHECK(ejwk.at("use") == "sig");
  CHECK_FALSE(ejwk.contains("d"));
  CHECK(ejwk.at("kid") == es.kid());
  CHECK(jwk_thumbprint(ejwk) == es.kid());
  const gt::FakeClock clock;
  CHECK(parts_of(es.mint(alice(), clock.now())).header.at("kid") == es.kid());
  CHECK(parts_of(es.mint(Claims(json{{"sub", "x"}}), clock.now())).header.at("kid") == es.kid());
}

TEST_CASE("keys from PEM files; keys that do not fit the algorithm are refused") {
  const gatehouse::test::TempDir tmp;
  const auto& dir = tmp.dir;
  auto write = [&](const std::string& name, const std::string& text) { return tmp.file(name, text); };
  const auto p256 = keygen("EC", "P-256");
  const auto p384 = keygen("EC", "P-384");
  const auto ed = keygen("ED25519");
  const auto rsa = keygen("RSA");
  const std::string p256_file = write("p256.pem", private_pem(p256.get()));

  SUBCASE("an ES256 key file signs, and the JWKS holds its public key") {
    gt::FakeClock clock;
    const TokenMinter m({.key_file = p256_file, .issuer = kIssuer});
    const TokenMinter again({.key_file = p256_file, .issuer = kIssuer});
    CHECK(m.kid() == again.kid());  // the same key file: the same JWKS after a restart
    CHECK(m.jwks_json() == again.jwks_json());
    CHECK(verify(*verifier_for(again, clock), m.mint(alice(), clock.now())).ok());
    // The public key in the JWKS is the file's: a verifier built from its PEM accepts the token.
    JwtVerifierOptions vo;
    vo.algorithms = {"ES256"};
    vo.issuers = {{kIssuer, StaticKeySource::from_pem(public_pem(p256.get()), "ES256", m.kid())}};
    vo.clock = &clock;
    CHECK(JwtVerifier(std::move(vo)).try_verify_now(m.mint(alice(), clock.now()))->ok());
  }
  SUBCASE("wrong key types, curves and files") {
    const std::string err = invalid_argument_of({.key_file = write("rsa.pem", private_pem(rsa.get())), .issuer = kIssuer});
    CHECK(err.find("ES256 needs a P-256 EC key") != std::string::npos);
    CHECK(err.find("rsa.pem") != std::string::npos);
    CHECK(err.find("RSA") != std::string::npos);
    CHECK(invalid_argument_of({.key_pem = private_pem(p384.get()), .issuer = kIssuer}).find("secp384r1") !=
          std::string::npos);
    CHECK(invalid_argument_of({.key_pem = private_pem(ed.get()), .issuer = kIssuer}).find("ED25519") != std::string::npos);
    CHECK(invalid_argument_of({.algorithm = "EdDSA", .key_file = p256_file, .issuer = kIssuer})
              .find("EdDSA needs an Ed25519 key") != std::string::npos);
    CHECK(invalid_argument_of({.key_pem = public_pem(p256.get()), .issuer = kIssuer}).find("no PEM private key") !=
          std::string::npos);
    CHECK(invalid_argument_of({.key_file = (dir / "absent.pem").string(), .issuer = kIssuer}).find("cannot read key file") !=
          std::string::npos);
    CHECK(invalid_argument_of({.key_file = p256_file, .key_pem = private_pem(p256.get()), .issuer = kIssuer})
              .find("not both") != std::string::npos);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST_CASE("minter options are checked") {
  CHECK(invalid_argument_of({.algorithm = "RS256", .issuer = kIssuer}).find("\"ES256\" or \"EdDSA\"") != std::string::npos);
  CHECK(invalid_argument_of({}).find("issuer is required") != std::string::npos);
  CHECK(invalid_argument_of({.issuer = kIssuer, .lifetime = 0s}).find("1 s..1 h") != std::string::npos);
  CHECK(invalid_argument_of({.issuer = kIssuer, .lifetime = 3601s}).find("1 s..1 h") != std::string::npos);
  CHECK_NOTHROW(TokenMinter({.issuer = kIssuer, .lifetime = 3600s}));
  CHECK(invalid_argument_of({.issuer = kIssuer, .copy_claims = {"sub", "exp"}}).find("\"exp\" is set by the minter") !=
        std::string::npos);
  CHECK(invalid_argument_of({.issuer = kIssuer, .copy_claims = {"sub", "sub"}}).find("twice") != std::string::npos);
  CHECK(invalid_argument_of({.issuer = kIssuer, .copy_claims = {""}}).find("empty claim") != std::string::npos);
}

TEST_CASE("the cache reuses a token for the same identity for half its lifetime, never across identities") {
  gt::FakeClock clock;
  const TokenMinter m({.issuer = kIssuer, .lifetime = 60s});
  const Claims a = alice();
  const Claims a_copy = a;  // copies share the payload: the verified-token cache hands them out
  const Claims a_again = alice();  // the same content, another verification: another identity
  const Claims b(json{{"sub", "bob"}});

  const std::string t1 = m.mint(a, clock.now());
  CHECK(m.mint(a_copy, clock.now()) == t1);
  const std::string tb = m.mint(b, clock.now());
  CHECK(tb != t1);
  CHECK(parts_of(tb).payload.at("sub") == "bob");
  CHECK(m.mint(a_again, clock.now()) != t1);
  clock.advance(29s);
  CHECK(m.mint(a, clock.now()) == t1);
  CHECK(m.mint(b, clock.now()) == tb);
  clock.advance(1s);  // half the lifetime: a fresh token with a fresh exp
  const std::string t2 = m.mint(a, clock.now());
  CHECK(t2 != t1);
  CHECK(parts_of(t2).payload.at("exp").get<std::int64_t>() == parts_of(t1).payload.at("exp").get<std::int64_t>() + 30);
  CHECK(m.mint(a, clock.now()) == t2);
  // A clock that went back does not get a token from its future.
  clock.advance(-10s);
  CHECK(m.mint(a, clock.now()) != t2);

  // Another minter never sees this one's tokens, even for the same claims.
  const TokenMinter other({.issuer = kIssuer, .lifetime = 60s});
  const std::string o1 = other.mint(a, clock.now());
  CHECK(verify(*verifier_for(other, clock), o1).ok());
  CHECK_FALSE(verify(*verifier_for(m, clock), o1).ok());

  // Without the cache every call signs anew.
  const TokenMinter uncached({.issuer = kIssuer, .cache = false});
  CHECK(uncached.mint(a, clock.now()) != uncached.mint(a, clock.now()));

  // A short source exp shortens the reuse as well: no token is handed out past half its life.
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count();
  const Claims expiring(json{{"sub", "carol"}, {"exp", now_s + 4}});
  const std::string e1 = m.mint(expiring, clock.now());
  clock.advance(1s);
  CHECK(m.mint(expiring, clock.now()) == e1);
  clock.advance(1s);
  CHECK(m.mint(expiring, clock.now()) != e1);
}

TEST_CASE("many threads mint at once with one minter") {
  const TokenMinter es({.issuer = kIssuer});
  const TokenMinter ed({.algorithm = "EdDSA", .issuer = kIssuer});
  const gt::FakeClock clock;
  const auto ves = verifier_for(es, clock);
  const auto ved = verifier_for(ed, clock);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const Claims c(json{{"sub", "user-" + std::to_string(t) + "-" + std::to_string(i)}});
        const TokenMinter& m = (i % 2) ? es : ed;
        const JwtVerifier& v = (i % 2) ? *ves : *ved;
        const std::string token = m.mint(c, clock.now());
        auto r = v.try_verify_now(token);
        if (!r || !r->ok() || r->value().subject() != c.subject()) ++bad;
        if (m.mint(c, clock.now()) != token) ++bad;  // this thread's cache
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(bad == 0);
}
