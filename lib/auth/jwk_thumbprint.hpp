// RFC 7638 JSON Web Key thumbprints.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace gatehouse::auth {

/// base64url(SHA-256) of the key's required members in lexicographic order without whitespace
/// (RSA: e, kty, n; EC: crv, kty, x, y; OKP: crv, kty, x; oct: k, kty). Throws
/// std::invalid_argument when `jwk` lacks one of them or has an unknown kty.
std::string jwk_thumbprint(const nlohmann::json& jwk);

}  // namespace gatehouse::auth
