// TokenMinter: signs short-lived internal JWTs that tell upstream services who the caller is.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gatehouse/auth/claims.hpp"
#include "gatehouse/auth/jws_algorithm.hpp"

namespace gatehouse::auth {

struct TokenMinterOptions {
  /// "ES256" (ECDSA on P-256) or "EdDSA" (Ed25519).
  std::string algorithm = "ES256";
  /// The signing key: a PEM private key file ("PRIVATE KEY" PKCS#8, or "EC PRIVATE KEY"; not
  /// encrypted), or the PEM text itself in key_pem (at most one of the two; options() no longer
  /// holds it, and the copies the minter read are wiped). Neither: a new key is
  /// generated at construction, so the JWKS changes at every restart and with every minter —
  /// fine for one gateway instance whose services fetch the JWKS, not for several instances
  /// behind one balancer (give them one key file).
  std::string key_file{};
  std::string key_pem{};
  /// Required: the "iss" of every minted token.
  std::string issuer{};
  /// The "aud" of every minted token; empty: no "aud".
  std::string audience{};
  /// exp = iat + lifetime, within 1 s..1 h. Never later than the source claims' own "exp".
  std::chrono::seconds lifetime{60};
  /// Claims copied from the verified source claims when present (values as they are: strings,
  /// arrays, objects). iss, aud, iat, nbf, exp and jti are the minter's own and cannot be copied.
  std::vector<std::string> copy_claims{"sub", "scope"};
  /// Also set "nbf" (= iat).
  bool not_before = false;
  /// Reuse the token minted for the same source claims (the same verified token: the verifier's
  /// cache hands out shared claims) while less than half its lifetime has passed. Per thread, no
  /// locks, at most 1024 entries per thread. Off: every call signs a new token.
  bool cache = true;
};

/// Shared by all worker threads: mint() may run on many threads at once. Signing costs tens of
/// microseconds; the cache makes repeated requests with one token cost a lookup.
class TokenMinter {
 public:
  /// Throws std::invalid_argument for bad options or a key that does not fit the algorithm (the
  /// message never holds key material).
  explicit TokenMinter(TokenMinterOptions options);
  ~TokenMinter();
  TokenMinter(const TokenMinter&) = delete;
  TokenMinter& operator=(const TokenMinter&) = delete;

  /// A compact JWS: header {"alg", "typ": "JWT", "kid"}, claims iss, aud (if set), the copied
  /// claims, iat, nbf (if set), exp, and jti (128 random bits, base64url; a reused token keeps its
  /// jti, so services must not treat jti as one per request). Throws std::runtime_error only if
  /// OpenSSL fails.
  std::string mint(const Claims& source, std::chrono::system_clock::time_point now) const;

  /// {"keys":[{public JWK, "kid", "alg", "use": "sig"}]}, for services to verify minted tokens.
  const std::string& jwks_json() const noexcept;
  /// RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key.
  const std::string& kid() const noexcept;
  JwsAlgorithm algorithm() const noexcept;
  const TokenMinterOptions& options() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<const Impl> impl_;
};

}  // namespace gatehouse::auth
