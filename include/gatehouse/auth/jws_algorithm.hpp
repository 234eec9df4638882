// The JWS signature algorithms the gateway can verify (RFC 7518 section 3, RFC 8037).
#pragma once
#include <optional>
#include <string_view>

namespace gatehouse::auth {

/// "none" is deliberately absent: there is no way to name it.
enum class JwsAlgorithm : unsigned char {
  hs256, hs384, hs512,  // HMAC with SHA-2
  rs256, rs384, rs512,  // RSASSA-PKCS1-v1_5
  ps256, ps384, ps512,  // RSASSA-PSS, MGF1 with the same hash, salt length = hash length
  es256, es384, es512,  // ECDSA on P-256, P-384, P-521, raw r||s signatures
  eddsa,                // Ed25519
};

/// Exact, case-sensitive match of the JOSE name ("RS256", "EdDSA", ...).
std::optional<JwsAlgorithm> parse_jws_algorithm(std::string_view name) noexcept;
std::string_view to_string(JwsAlgorithm alg) noexcept;

}  // namespace gatehouse::auth
