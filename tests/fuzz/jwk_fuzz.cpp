// libFuzzer target: JWKS documents, single JWKs and PEM keys, as an issuer's configuration or a
// JWKS endpoint would hand them to gatehouse.
//
// Input: one selector byte, then the text. selector % 4 picks the entry point:
//   0  JwkSet::parse(text)                              e.g. '0'
//   1  JsonWebKey::from_json(text)                      e.g. '1'
//   2  JwkSet::from_pem(text)                           e.g. '2'
//   3  JwkSet::from_pem(text, alg, "pem"), alg = JwsAlgorithm number (selector / 4) % 13:
//      '3' EdDSA, 'C' RS256, 'O' PS256, '[' ES256, '7' HS256 (refused: not a PEM algorithm)
// Every key that loads is asked can_verify() for every algorithm, and checks a made-up signature
// with each algorithm it accepts. Only std::invalid_argument may escape a loader.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "auth/algorithm_traits.hpp"
#include "auth/jws_signature.hpp"
#include "gatehouse/auth/jwk.hpp"
#include "gatehouse/auth/jws_algorithm.hpp"

namespace {

namespace auth = gatehouse::auth;
using auth::JwsAlgorithm;

constexpr std::array<JwsAlgorithm, 13> kAlgorithms{
    JwsAlgorithm::hs256, JwsAlgorithm::hs384, JwsAlgorithm::hs512, JwsAlgorithm::rs256, JwsAlgorithm::rs384,
    JwsAlgorithm::rs512, JwsAlgorithm::ps256, JwsAlgorithm::ps384, JwsAlgorithm::ps512, JwsAlgorithm::es256,
    JwsAlgorithm::es384, JwsAlgorithm::es512, JwsAlgorithm::eddsa};

// Messages quote at most two client values (kid, alg, crv), each escaped and cut at 64 characters.
constexpr std::size_t kMaxMessage = 1024;

[[noreturn]] void invariant_failed(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "jwk_fuzz: invariant failed: %s %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

bool printable_ascii(std::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
  }
  return true;
}

// A signature of the length `alg` expects from this key, filled from the input.
std::string made_up_signature(const auth::JsonWebKey& key, JwsAlgorithm alg, std::string_view seed) {
  std::size_t size = 64;  // Ed25519
  switch (key.type()) {
    case auth::KeyType::rsa: size = (key.bits() + 7) / 8; break;
    case auth::KeyType::ec: size = 2 * auth::ec_coordinate_size(key.curve()); break;
    case auth::KeyType::oct: size = auth::digest_size_for(alg); break;
    case auth::KeyType::okp: break;
  }
  std::string sig(size, '\x5a');
  for (std::size_t i = 0; i < size && !seed.empty(); ++i) sig[i] = seed[i % seed.size()];
  return sig;
}

void check_key(const auth::JsonWebKey& key, std::string_view seed) {
  switch (key.type()) {
    case auth::KeyType::rsa:
      if (key.bits() < 2048 || key.bits() > 16384 || !key.curve().empty()) invariant_failed("RSA key out of bounds");
      break;
    case auth::KeyType::ec:
      if (key.curve() != "P-256" && key.curve() != "P-384" && key.curve() != "P-521") invariant_failed("EC curve");
      break;
    case auth::KeyType::okp:
      if (key.curve() != "Ed25519" || key.bits() != 256) invariant_failed("OKP curve");
      break;
    case auth::KeyType::oct:
      if (key.bits() < 256 || key.bits() % 8 != 0) invariant_failed("HMAC secret shorter than 32 bytes");
      break;
  }
  const auto pinned = key.alg().empty() ? std::nullopt : auth::parse_jws_algorithm(key.alg());
  if (!key.alg().empty() && !pinned) invariant_failed("key pinned to an unknown alg:", key.alg());
  for (const JwsAlgorithm alg : kAlgorithms) {
    if (!key.can_verify(alg)) continue;
    if (auth::key_type_for(alg) != key.type()) invariant_failed("can_verify across key types");
    if (pinned && *pinned != alg) invariant_failed("a pinned key verifies another alg");
    const std::string_view crv = auth::curve_for(alg);
    if (!crv.empty() && crv != key.curve()) invariant_failed("can_verify across curves");
    if (key.type() == auth::KeyType::oct && key.bits() / 8 < auth::digest_size_for(alg)) {
      invariant_failed("HMAC secret shorter than its hash");
    }
    const std::string sig = made_up_signature(key, alg, seed);
    static_cast<void>(auth::verify_jws_signature(alg, key, "eyJhbGciOiJIUzI1NiJ9.e30", sig));
  }
}

void check_set(const auth::JwkSet& set, std::string_view seed) {
  if (set.generation() == 0) invariant_failed("set without a generation");
  for (const auto& why : set.skipped()) {
    if (!printable_ascii(why) || why.size() > kMaxMessage) invariant_failed("unsafe skip reason:", why);
  }
  for (const auth::JsonWebKey& key : set.keys()) {
    check_key(key, seed);
    if (key.kid().empty()) continue;
    if (!set.contains_kid(key.kid())) invariant_failed("kid not found:", key.kid());
    for (const JwsAlgorithm alg : kAlgorithms) {
      const auth::JsonWebKey* found = set.find(key.kid(), alg);
      if (found && (found->kid() != key.kid() || !found->can_verify(alg))) invariant_failed("find() is wrong");
      if (!found && key.can_verify(alg)) invariant_failed("find() misses a key");
    }
  }
}

void check_message(const std::invalid_argument& e) {
  const std::string_view what = e.what();
  if (!printable_ascii(what) || what.size() > kMaxMessage) invariant_failed("unsafe error message:", what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const unsigned selector = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    switch (selector % 4) {
      case 0:
        check_set(auth::JwkSet::parse(text), text);
        break;
      case 1:
        check_key(auth::JsonWebKey::from_json(text), text);
        break;
      case 2:
        check_set(auth::JwkSet::from_pem(text), text);
        break;
      default: {
        const auto alg = auth::to_string(kAlgorithms[selector / 4 % kAlgorithms.size()]);
        const auth::JwkSet set = auth::JwkSet::from_pem(text, alg, "pem");
        if (set.size() != 1 || set.keys().front().alg() != alg || set.keys().front().kid() != "pem") {
          invariant_failed("from_pem lost its alg or kid");
        }
        check_set(set, text);
        break;
      }
    }
  } catch (const std::invalid_argument& e) {
    check_message(e);  // refused: fine, as long as the message is safe to log
  }
  return 0;
}
