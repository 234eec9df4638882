#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ui.h>
#include <openssl/x509.h>

#include "auth/base64url.hpp"
#include "auth/jws_signature.hpp"
#include "gatehouse/auth/jwk.hpp"
#include "gatehouse/auth/key_source.hpp"
#include "support/jwt_signer.hpp"
#include "support/temp_dir.hpp"

using namespace gatehouse::auth;
using gatehouse::test::b64url;
using gatehouse::test::TestKey;
using nlohmann::json;

namespace {

// RFC 7517 Appendix A.1: the example public keys.
constexpr const char* kRfc7517PublicKeys = R"({"keys":
  [
    {"kty":"EC",
     "crv":"P-256",
     "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
     "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
     "use":"enc",
     "kid":"1"},
    {"kty":"RSA",
     "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
     "e":"AQAB",
     "alg":"RS256",
     "kid":"2011-04-29"}
  ]
})";

std::string what_of(auto&& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "<no exception>";
}

}  // namespace

TEST_CASE("jwk: RFC 7517 example set keeps the signing key and skips the encryption key") {
  const JwkSet set = JwkSet::parse(kRfc7517PublicKeys);
  REQUIRE(set.size() == 1);
  const JsonWebKey& rsa = set.keys()[0];
  CHECK(rsa.type() == KeyType::rsa);
  CHECK(rsa.kid() == "2011-04-29");
  CHECK(rsa.alg() == "RS256");
  CHECK(rsa.bits() == 2048);
  CHECK(rsa.can_verify(JwsAlgorithm::rs256));
  CHECK_FALSE(rsa.can_verify(JwsAlgorithm::ps256));  // pinned to RS256
  CHECK_FALSE(rsa.can_verify(JwsAlgorithm::hs256));
  REQUIRE(set.skipped().size() == 1);
  CHECK(set.skipped()[0].find("\"use\" is not \"sig\"") != std::string::npos);
  CHECK(set.contains_kid("2011-04-29"));
  CHECK_FALSE(set.contains_kid("1"));
  CHECK(set.find("2011-04-29", JwsAlgorithm::rs256) == &rsa);
  CHECK(set.find("2011-04-29", JwsAlgorithm::es256) == nullptr);
}

TEST_CASE("jwk: generated keys of every kind load with the right type, curve and size") {
  struct Case {
    const char* alg;
    KeyType type;
    const char* curve;
    std::size_t bits;
  };
  const Case cases[] = {
      {"RS256", KeyType::rsa, "", 2048},   {"ES256", KeyType::ec, "P-256", 256},
      {"ES384", KeyType::ec, "P-384", 384}, {"ES512", KeyType::ec, "P-521", 521},
      {"EdDSA", KeyType::okp, "Ed25519", 256}, {"HS512", KeyType::oct, "", 512},
  };
  for (const auto& c : cases) {
    CAPTURE(c.alg);
    const TestKey k = TestKey::generate(c.alg);
    const JsonWebKey key = JsonWebKey::from_json(k.public_jwk("kid-1"));
    CHECK(key.type() == c.type);
    CHECK(key.curve() == c.curve);
    CHECK(key.bits() == c.bits);
    CHECK(key.kid() == "kid-1");
    CHECK(key.alg() == c.alg);
    CHECK(key.can_verify(*parse_jws_algorithm(c.alg)));
    if (c.type != KeyType::oct) {
      const JsonWebKey pem = JsonWebKey::from_pem(k.public_pem(), c.alg, "pem-1");
      CHECK(pem.type() == c.type);
      CHECK(pem.curve() == c.curve);
      CHECK(pem.bits() == c.bits);
      CHECK(pem.kid() == "pem-1");
    }
  }
}

TEST_CASE("jwk: key type must fit the algorithm") {
  const JsonWebKey rsa = JsonWebKey::from_json(TestKey::generate("RS256").public_jwk({}, false));
  for (auto alg : {JwsAlgorithm::rs256, JwsAlgorithm::rs384, JwsAlgorithm::rs512, JwsAlgorithm::ps256,
                   JwsAlgorithm::ps384, JwsAlgorithm::ps512}) {
    CHECK(rsa.can_verify(alg));
  }
  for (auto alg : {JwsAlgorithm::hs256, JwsAlgorithm::es256, JwsAlgorithm::eddsa}) CHECK_FALSE(rsa.can_verify(alg));

  const JsonWebKey p256 = JsonWebKey::from_json(TestKey::generate("ES256").public_jwk({}, false));
  CHECK(p256.can_verify(JwsAlgorithm::es256));
  CHECK_FALSE(p256.can_verify(JwsAlgorithm::es384));  // curve decides the algorithm
  CHECK_FALSE(p256.can_verify(JwsAlgorithm::es512));
  CHECK_FALSE(p256.can_verify(JwsAlgorithm::eddsa));

  const JsonWebKey ed = JsonWebKey::from_json(TestKey::generate("EdDSA").public_jwk({}, false));
  CHECK(ed.can_verify(JwsAlgorithm::eddsa));
  CHECK_FALSE(ed.can_verify(JwsAlgorithm::es256));

  CHECK(what_of([] {
          json jwk = TestKey::generate("RS256").public_jwk({}, false);
          jwk["alg"] = "ES256";
          JsonWebKey::from_json(jwk);
        }).find("does not fit") != std::string::npos);
  CHECK(what_of([] {
          json jwk = TestKey::generate("ES256").public_jwk({}, false);
          jwk["alg"] = "ES384";
          JsonWebKey::from_json(jwk);
        }).find("does not fit") != std::string::npos);
  CHECK(what_of([] {
          json jwk = TestKey::generate("RS256").public_jwk({}, false);
          jwk["alg"] = "none";
          JsonWebKey::from_json(jwk);
        }).find("not a supported") != std::string::npos);
}

TEST_CASE("jwk: HMAC secrets shorter than the hash are refused, and never echoed") {
  const std::string short_secret = "0123456789abcdef";  // 16 bytes
  const std::string msg = what_of([&] { JsonWebKey::from_json(json{{"kty", "oct"}, {"k", b64url(short_secret)}}); });
  CHECK(msg.find("shorter than 32 bytes") != std::string::npos);
  CHECK(msg.find(b64url(short_secret)) == std::string::npos);
  CHECK(msg.find(short_secret) == std::string::npos);

  const std::string secret32(32, 'k');
  CHECK(what_of([&] { JsonWebKey::from_json(json{{"kty", "oct"}, {"k", b64url(secret32)}, {"alg", "HS512"}}); })
            .find("shorter than the hash") != std::string::npos);
  const JsonWebKey k = JsonWebKey::from_json(json{{"kty", "oct"}, {"k", b64url(secret32)}});
  CHECK(k.can_verify(JwsAlgorithm::hs256));
  CHECK_FALSE(k.can_verify(JwsAlgorithm::hs384));
  CHECK_FALSE(k.can_verify(JwsAlgorithm::hs512));
  CHECK_THROWS_AS(JsonWebKey::from_secret("too short"), std::invalid_argument);
  CHECK(JsonWebKey::from_secret(std::string(48, 's'), "HS384", "h").can_verify(JwsAlgorithm::hs384));
}

TEST_CASE("jwk: weak or broken public keys are refused") {
  // A 1024-bit modulus.
  std::string n(128, '\x5a');
  n[0] = '\xc1';
  n[127] = '\x01';
  CHECK(what_of([&] { JsonWebKey::from_json(json{{"kty", "RSA"}, {"n", b64url(n)}, {"e", "AQAB"}}); })
            .find("2048") != std::string::npos);
  // An even exponent (e = 2) on an otherwise fine key.
  json rsa = TestKey::generate("RS256").public_jwk({}, false);
  rsa["e"] = b64url(std::string("\x02", 1));
  CHECK_THROWS_AS(JsonWebKey::from_json(rsa), std::invalid_argument);

  // A point moved off the curve.
  json ec = TestKey::generate("ES256").public_jwk({}, false);
  std::string y = *base64url_decode(ec["y"].get<std::string>());
  y.back() = static_cast<char>(y.back() ^ 1);
  ec["y"] = b64url(y);
  CHECK_THROWS_AS(JsonWebKey::from_json(ec), std::invalid_argument);
  // Shortened coordinates are not allowed either (RFC 7518 section 6.2.1.2).
  json ec2 = TestKey::generate("ES256").public_jwk({}, false);
  ec2["x"] = b64url(base64url_decode(ec2["x"].get<std::string>())->substr(1));
  CHECK(what_of([&] { JsonWebKey::from_json(ec2); }).find("wrong length") != std::string::npos);
  // Ed25519 keys are exactly 32 bytes.
  json ed = TestKey::generate("EdDSA").public_jwk({}, false);
  ed["x"] = b64url(std::string(31, 'x'));
  CHECK_THROWS_AS(JsonWebKey::from_json(ed), std::invalid_argument);
  // Key members are strict base64url too.
  json rsa2 = TestKey::generate("RS256").public_jwk({}, false);
  rsa2["e"] = "AQAB==";
  CHECK(what_of([&] { JsonWebKey::from_json(rsa2); }).find("not base64url") != std::string::npos);
}

TEST_CASE("jwk: unknown kty and crv are skipped while valid keys are kept") {
  json set = {{"keys", json::array()}};
  set["keys"].push_back({{"kty", "foo"}, {"kid", "a"}});
  set["keys"].push_back({{"kty", "EC"}, {"crv", "P-192"}, {"x", "AA"}, {"y", "AA"}, {"kid", "b"}});
  set["keys"].push_back({{"kty", "OKP"}, {"crv", "X25519"}, {"x", b64url(std::string(32, 'x'))}, {"kid", "c"}});
  set["keys"].push_back({{"kty", "OKP"}, {"crv", "Ed448"}, {"x", b64url(std::string(57, 'x'))}, {"kid", "d"}});
  set["keys"].push_back(42);
  set["keys"].push_back(TestKey::generate("ES256").public_jwk("good-ec"));
  json enc = TestKey::generate("RS256").public_jwk("enc-key", false);
  enc["use"] = "enc";
  set["keys"].push_back(enc);
  json ops = TestKey::generate("RS256").public_jwk("ops-key", false);
  ops["key_ops"] = {"encrypt"};
  set["keys"].push_back(ops);
  json verify_ops = TestKey::generate("RS256").public_jwk("verify-key", false);
  verify_ops["key_ops"] = {"verify"};
  verify_ops["use"] = "sig";
  set["keys"].push_back(verify_ops);
  json with_private = TestKey::generate("EdDSA").public_jwk("ed", false);
  with_private["d"] = b64url(std::string(32, 'p'));  // ignored: only the public part is used
  set["keys"].push_back(with_private);

  const JwkSet keys = JwkSet::from_json(set);
  REQUIRE(keys.size() == 3);
  CHECK(keys.keys()[0].kid() == "good-ec");
  CHECK(keys.keys()[1].kid() == "verify-key");
  CHECK(keys.keys()[2].kid() == "ed");
  REQUIRE(keys.skipped().size() == 7);
  CHECK(keys.skipped()[0].find("unsupported kty 'foo'") != std::string::npos);
  CHECK(keys.skipped()[1].find("unsupported EC curve 'P-192'") != std::string::npos);
  CHECK(keys.skipped()[2].find("unsupported OKP curve 'X25519'") != std::string::npos);
  CHECK(keys.skipped()[3].find("unsupported OKP curve 'Ed448'") != std::string::npos);
  CHECK(keys.skipped()[4].find("not a JSON object") != std::string::npos);
  CHECK(keys.skipped()[5].find("\"use\"") != std::string::npos);
  CHECK(keys.skipped()[6].find("\"key_ops\"") != std::string::npos);
  for (const auto& line : keys.skipped()) CHECK(line.find(b64url(std::string(32, 'p'))) == std::string::npos);
}

TEST_CASE("jwk: documents that are not a key set throw") {
  CHECK_THROWS_AS(JwkSet::parse("not json"), std::invalid_argument);
  CHECK_THROWS_AS(JwkSet::parse("[]"), std::invalid_argument);
  CHECK_THROWS_AS(JwkSet::parse("{}"), std::invalid_argument);
  CHECK_THROWS_AS(JwkSet::parse(R"({"keys":{}})"), std::invalid_argument);
  CHECK(JwkSet::parse(R"({"keys":[]})").empty());
  CHECK_THROWS_AS(StaticKeySource::from_jwks(R"({"keys":[{"kty":"foo"}]})"), std::invalid_argument);
  CHECK_THROWS_AS(JsonWebKey::from_json(std::string_view(R"({"kid":"x"})")), std::invalid_argument);
  CHECK_THROWS_AS(JsonWebKey::from_json(json{{"kty", "RSA"}, {"kid", 5}}), std::invalid_argument);
}

TEST_CASE("jwk: kid lookup is exact, whatever the kid holds") {
  const TestKey k = TestKey::generate("ES256");
  json set = {{"keys", {k.public_jwk("b"), k.public_jwk("a"), TestKey::generate("EdDSA").public_jwk("a")}}};
  const JwkSet keys = JwkSet::from_json(set);
  CHECK(keys.find("a", JwsAlgorithm::es256) == &keys.keys()[1]);
  CHECK(keys.find("a", JwsAlgorithm::eddsa) == &keys.keys()[2]);
  CHECK(keys.find("b", JwsAlgorithm::es256) == &keys.keys()[0]);
  for (const char* hostile : {"../../etc/passwd", "' OR 1=1 --", "A", "a ", "*", ""}) {
    CHECK(keys.find(hostile, JwsAlgorithm::es256) == nullptr);
    CHECK_FALSE(keys.contains_kid(hostile));
  }
  CHECK_FALSE(keys.contains_kid(std::string_view("a\0", 2)));
}

TEST_CASE("jwk: each parse gets its own generation, copies share it") {
  const std::string doc = TestKey::generate("ES256").jwks("k").dump();
  const JwkSet a = JwkSet::parse(doc);
  const JwkSet b = JwkSet::parse(doc);
  const JwkSet c = a;
  CHECK(a.generation() != b.generation());
  CHECK(c.generation() == a.generation());
  CHECK(c.find("k", JwsAlgorithm::es256) != nullptr);
}

TEST_CASE("jwk: PEM keys and certificates load; garbage does not") {
  const TestKey rsa = TestKey::generate("RS256");
  const JwkSet set = JwkSet::from_pem(rsa.public_pem(), "RS256", "pem");
  REQUIRE(set.size() == 1);
  CHECK(set.find("pem", JwsAlgorithm::rs256));
  CHECK_FALSE(set.find("pem", JwsAlgorithm::ps256));  // pinned
  CHECK_THROWS_AS(JwkSet::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
                  std::invalid_argument);
  CHECK_THROWS_AS(JwkSet::from_pem("hello"), std::invalid_argument);
  CHECK_THROWS_AS(JwkSet::from_pem(rsa.public_pem(), "ES256"), std::invalid_argument);

  // A self-signed certificate carrying an EC key.
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  REQUIRE(pkey);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, pkey);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("issuer.test"), -1, -1, 0);
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  REQUIRE(X509_sign(cert, pkey, EVP_sha256()) > 0);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  const std::string pem(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  X509_free(cert);
  EVP_PKEY_free(pkey);
  const JsonWebKey key = JsonWebKey::from_pem(pem, {}, "cert");
  CHECK(key.type() == KeyType::ec);
  CHECK(key.curve() == "P-256");
  CHECK(key.can_verify(JwsAlgorithm::es256));
}

TEST_CASE("jwk: a PEM certificate marked encrypted is refused without asking for a passphrase") {
  // Found while writing tests/fuzz/jwk_fuzz: OpenSSL's default PEM passphrase callback prompted
  // on the terminal, and waited there. A UI method standing in for the terminal records questions.
  static bool asked = false;
  asked = false;
  UI_METHOD* recorder = UI_create_method("gatehouse test: no prompts");
  REQUIRE(recorder);
  UI_method_set_reader(recorder, [](UI*, UI_STRING*) {
    asked = true;
    return 0;
  });
  const UI_METHOD* previous = UI_get_default_method();
  UI_set_default_method(recorder);
  const std::string pem =
      "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n"
      "DEK-Info: AES-128-CBC,00000000000000000000000000000000\n\nAAAAAAAAAAAAAAAAAAAAAA==\n"
      "-----END CERTIFICATE-----\n";
  CHECK_THROWS_AS(JsonWebKey::from_pem(pem), std::invalid_argument);
  UI_set_default_method(previous);
  UI_destroy_method(recorder);
  CHECK_FALSE(asked);
}

TEST_CASE("jwk: StaticKeySource reads JWKS and PEM files") {
  const TestKey ec = TestKey::generate("ES384");
  const gatehouse::test::TempDir tmp;
  const std::filesystem::path jwks_path = tmp.file("keys.jwks.json", ec.jwks("file-kid").dump());
  const std::filesystem::path pem_path = tmp.file("key.pem", ec.public_pem());
  const auto from_jwks = StaticKeySource::from_file(jwks_path);
  CHECK(from_jwks->current()->find("file-kid", JwsAlgorithm::es384));
  CHECK_FALSE(from_jwks->can_refresh());
  CHECK(from_jwks->generation() == from_jwks->current()->generation());
  const auto from_pem = StaticKeySource::from_file(pem_path, "ES384", "pem-kid");
  CHECK(from_pem->current()->find("pem-kid", JwsAlgorithm::es384));
  CHECK_THROWS_AS(StaticKeySource::from_file(tmp.dir / "no_such_file.json"), std::invalid_argument);
}

TEST_CASE("jwk: signature check matches each key to its own signatures") {
  for (const char* alg : {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                          "EdDSA", "HS256", "HS384", "HS512"}) {
    CAPTURE(alg);
    const auto parsed = parse_jws_algorithm(alg);
    REQUIRE(parsed);
    CHECK(to_string(*parsed) == alg);
    const TestKey k = TestKey::generate(alg);
    const JsonWebKey key = JsonWebKey::from_json(k.public_jwk());
    const std::string input = "eyJhbGciOiJ4In0.eyJ4IjoxfQ";
    const std::string sig = k.sign(input);
    CHECK(verify_jws_signature(*parsed, key, input, sig));
    CHECK_FALSE(verify_jws_signature(*parsed, key, input + "x", sig));
    std::string bad = sig;
    bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x40);
    CHECK_FALSE(verify_jws_signature(*parsed, key, input, bad));
    CHECK_FALSE(verify_jws_signature(*parsed, key, input, ""));
    CHECK_FALSE(verify_jws_signature(*parsed, key, input, sig + "x"));
  }
  CHECK_FALSE(parse_jws_algorithm("none"));
  CHECK_FALSE(parse_jws_algorithm("rs256"));
  CHECK_FALSE(parse_jws_algorithm("Ed25519"));
}
