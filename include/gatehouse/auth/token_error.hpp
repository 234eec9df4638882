// Why a bearer token was refused, as std::error_code values of the "gatehouse.token" category.
#pragma once
#include <system_error>
#include <type_traits>

namespace gatehouse::auth {

/// Every value except `internal`, `key_source_unavailable` and `introspection_unavailable` means
/// the client sent a bad token (answer 401); those three are the gateway's side failing (503).
enum class TokenError {
  malformed = 1,           ///< not a compact JWS: segments, base64url, JSON, claim types
  unsupported_algorithm,   ///< "alg" missing from the configured list (includes "none")
  bad_signature,           ///< the signature does not verify with the selected key
  expired,                 ///< now >= exp + leeway
  not_yet_valid,           ///< now < nbf - leeway, or iat later than now + leeway
  wrong_issuer,            ///< "iss" is not a configured issuer
  wrong_audience,          ///< "aud" holds none of the configured audiences
  missing_claim,           ///< a required claim (or iss/aud/exp) is absent
  wrong_type,              ///< header "typ" differs from the configured one, or introspection
                           ///< describes a refresh token
  unknown_key,             ///< no key of the issuer can verify this token (kid, type, alg)
  key_source_unavailable,  ///< the issuer's keys could not be obtained
  token_too_large,         ///< longer than max_token_bytes
  inactive,                ///< introspection reported the token inactive
  forbidden_header,        ///< jwk, jku, x5u, x5c, crit or b64 in the header
  internal,                ///< unexpected failure inside the verifier
  introspection_unavailable,  ///< the introspection endpoint failed, timed out or answered garbage
};

/// True for the errors that say nothing about the token: the verifier could not decide.
bool is_unavailable(std::error_code e) noexcept;

const std::error_category& token_category() noexcept;
std::error_code make_error_code(TokenError e) noexcept;

}  // namespace gatehouse::auth

template <>
struct std::is_error_code_enum<gatehouse::auth::TokenError> : std::true_type {};
