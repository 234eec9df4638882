// What each JWS algorithm needs from a key and a signature.
#pragma once
#include <cstddef>
#include <string_view>

#include "gatehouse/auth/jwk.hpp"
#include "gatehouse/auth/jws_algorithm.hpp"

namespace gatehouse::auth {

constexpr KeyType key_type_for(JwsAlgorithm alg) noexcept {
  switch (alg) {
    case JwsAlgorithm::hs256: case JwsAlgorithm::hs384: case JwsAlgorithm::hs512: return KeyType::oct;
    case JwsAlgorithm::rs256: case JwsAlgorithm::rs384: case JwsAlgorithm::rs512:
    case JwsAlgorithm::ps256: case JwsAlgorithm::ps384: case JwsAlgorithm::ps512: return KeyType::rsa;
    case JwsAlgorithm::es256: case JwsAlgorithm::es384: case JwsAlgorithm::es512: return KeyType::ec;
    case JwsAlgorithm::eddsa: return KeyType::okp;
  }
  return KeyType::oct;
}

/// OpenSSL digest name; empty for EdDSA, which hashes internally.
constexpr std::string_view digest_for(JwsAlgorithm alg) noexcept {
  switch (alg) {
    case JwsAlgorithm::hs256: case JwsAlgorithm::rs256: case JwsAlgorithm::ps256:
    case JwsAlgorithm::es256: return "SHA256";
    case JwsAlgorithm::hs384: case JwsAlgorithm::rs384: case JwsAlgorithm::ps384:
    case JwsAlgorithm::es384: return "SHA384";
    case JwsAlgorithm::hs512: case JwsAlgorithm::rs512: case JwsAlgorithm::ps512:
    case JwsAlgorithm::es512: return "SHA512";
    case JwsAlgorithm::eddsa: return {};
  }
  return {};
}

/// Hash output size in bytes (the minimum HMAC secret length); 0 for EdDSA.
constexpr std::size_t digest_size_for(JwsAlgorithm alg) noexcept {
  const std::string_view d = digest_for(alg);
  return d == "SHA256" ? 32 : d == "SHA384" ? 48 : d == "SHA512" ? 64 : 0;
}

/// The JWK "crv" an algorithm requires; empty for RSA and HMAC.
constexpr std::string_view curve_for(JwsAlgorithm alg) noexcept {
  switch (alg) {
    case JwsAlgorithm::es256: return "P-256";
    case JwsAlgorithm::es384: return "P-384";
    case JwsAlgorithm::es512: return "P-521";
    case JwsAlgorithm::eddsa: return "Ed25519";
    default: return {};
  }
}

constexpr bool is_pss(JwsAlgorithm alg) noexcept {
  return alg == JwsAlgorithm::ps256 || alg == JwsAlgorithm::ps384 || alg == JwsAlgorithm::ps512;
}

/// Bytes of one coordinate on an ECDSA curve: a raw signature is r||s of twice that.
constexpr std::size_t ec_coordinate_size(std::string_view curve) noexcept {
  return curve == "P-256" ? 32 : curve == "P-384" ? 48 : curve == "P-521" ? 66 : 0;
}

}  // namespace gatehouse::auth
