// Checks one JWS signature with one key.
#pragma once
#include <string_view>

#include "gatehouse/auth/jwk.hpp"
#include "gatehouse/auth/jws_algorithm.hpp"

namespace gatehouse::auth {

/// True when `signature` (raw bytes, already base64url-decoded) is a valid `alg` signature over
/// `signing_input` (ASCII header "." payload). The caller has checked key.can_verify(alg); this
/// checks it again. ECDSA signatures must be raw r||s of exactly twice the coordinate size (DER is
/// refused); HMAC tags are compared in constant time.
bool verify_jws_signature(JwsAlgorithm alg, const JsonWebKey& key, std::string_view signing_input,
                          std::string_view signature) noexcept;

}  // namespace gatehouse::auth
