// Test-only JWS signer: generates keys with OpenSSL, exports them as JWK or PEM, signs tokens.
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/token_verifier.hpp"

struct evp_pkey_st;

namespace gatehouse::test {

class TestKey {
 public:
  /// A key for `alg` ("RS256".."PS512", "ES256".."ES512", "EdDSA", "HS256".."HS512"). By default one
  /// key per kind is generated per process and shared (RSA key generation is slow); `fresh` makes a
  /// new one.
  static TestKey generate(std::string_view alg, bool fresh = false);
  /// The same key material used under another algorithm name (e.g. an RS256 key as PS256).
  TestKey as(std::string_view alg) const;

  const std::string& alg() const noexcept { return alg_; }
  /// Public JWK; "alg" is included when `with_alg`, "kid" when not empty.
  nlohmann::json public_jwk(std::string_view kid = {}, bool with_alg = true) const;
  /// {"keys":[public_jwk(kid)]}
  nlohmann::json jwks(std::string_view kid = {}) const;
  /// SubjectPublicKeyInfo PEM (asymmetric keys only).
  std::string public_pem() const;
  /// The HMAC secret (HS keys only).
  const std::string& secret() const noexcept { return secret_; }

  /// The raw JWS signature over `input`; ECDSA as r||s unless `der`.
  std::string sign(std::string_view input, bool der = false) const;

 private:
  std::string alg_;
  std::shared_ptr<evp_pkey_st> pkey_;
  std::string secret_;
};

std::string b64url(std::string_view bytes);
/// header "." payload, each base64url-encoded exactly as given (so tests can craft odd JSON).
std::string signing_input(std::string_view header_json, std::string_view payload_json);
/// A complete compact JWS over the given JSON texts.
std::string make_token_text(const TestKey& key, std::string_view header_json, std::string_view payload_json,
                            bool der = false);
std::string make_token(const TestKey& key, const nlohmann::json& header, const nlohmann::json& payload);
/// HMAC tag with arbitrary secret bytes ("HS256", ...), for attacks such as HS256 keyed with a PEM.
std::string hmac_sign(std::string_view alg, std::string_view secret, std::string_view input);

/// Runs verifier.verify(token) to completion on a private io_context (the async path, as the
/// gateway takes it on a cache miss); exceptions propagate.
auth::VerifyResult run_verify(const auth::TokenVerifier& verifier, std::string_view token);

}  // namespace gatehouse::test
