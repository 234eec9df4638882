// JSON Web Keys (RFC 7517) that verify token signatures: one key, and a set of them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/jws_algorithm.hpp"

namespace gatehouse::auth {

enum class KeyType : unsigned char { rsa, ec, okp, oct };

/// A public key (or an HMAC secret) ready to verify signatures. Immutable and cheap to copy; safe to
/// use from many threads at once. Loading refuses weak or broken keys: RSA moduli under 2048 bits,
/// EC points not on their curve, HMAC secrets shorter than 32 bytes (or than the hash of the key's
/// alg). Errors are std::invalid_argument whose message names the kid but never key material.
class JsonWebKey {
 public:
  /// One JWK object. Private members ("d", ...) are ignored; only the public part is kept.
  static JsonWebKey from_json(const nlohmann::json& jwk);
  static JsonWebKey from_json(std::string_view json);
  /// A PEM public key ("PUBLIC KEY", "RSA PUBLIC KEY") or the key of a PEM "CERTIFICATE" (the
  /// certificate itself is not validated). `alg`, when given, pins the key to that algorithm.
  static JsonWebKey from_pem(std::string_view pem, std::string_view alg = {}, std::string_view kid = {});
  /// An HMAC secret given as raw bytes.
  static JsonWebKey from_secret(std::string_view secret, std::string_view alg = {},
                                std::string_view kid = {});

  KeyType type() const noexcept;
  /// "" when the key has no kid.
  const std::string& kid() const noexcept;
  /// The key's "alg" ("" when absent); when present it is the only algorithm the key verifies.
  const std::string& alg() const noexcept;
  /// "P-256", "P-384", "P-521" or "Ed25519"; "" for RSA and oct keys.
  std::string_view curve() const noexcept;
  /// RSA modulus, EC field or HMAC secret size in bits.
  std::size_t bits() const noexcept;
  /// True when this key may check a signature made with `alg`: the key type and curve fit the
  /// algorithm, the key's alg (if any) equals it, "use" (if any) is "sig", "key_ops" (if any)
  /// includes "verify", and an HMAC secret is at least as long as the hash.
  bool can_verify(JwsAlgorithm alg) const noexcept;

  struct Impl;
  const Impl& impl() const noexcept { return *impl_; }

 private:
  explicit JsonWebKey(std::shared_ptr<const Impl> impl) noexcept;
  std::shared_ptr<const Impl> impl_;
};

/// A set of keys, typically one issuer's JWKS document.
class JwkSet {
 public:
  JwkSet();
  explicit JwkSet(std::vector<JsonWebKey> keys);

  /// Parses {"keys":[...]}. Keys that cannot verify signatures (unknown kty or crv, "use":"enc",
  /// key_ops without "verify", an alg we do not verify, weak or invalid material) are left out and
  /// reported in skipped(); the others are kept. Throws std::invalid_argument when the text is not
  /// a JSON object with a "keys" array.
  static JwkSet parse(std::string_view json);
  static JwkSet from_json(const nlohmann::json& jwks);
  /// A one-key set from a PEM public key or certificate (see JsonWebKey::from_pem).
  static JwkSet from_pem(std::string_view pem, std::string_view alg = {}, std::string_view kid = {});

  bool empty() const noexcept { return keys_.empty(); }
  std::size_t size() const noexcept { return keys_.size(); }
  const std::vector<JsonWebKey>& keys() const noexcept { return keys_; }

  /// True when some key carries exactly this kid.
  bool contains_kid(std::string_view kid) const noexcept;
  /// The first key with exactly this kid that can verify `alg`, or nullptr.
  const JsonWebKey* find(std::string_view kid, JwsAlgorithm alg) const noexcept;
  /// Why keys were left out by parse(), one line each, for the log (no key material).
  const std::vector<std::string>& skipped() const noexcept { return skipped_; }
  /// A number unique to this parsed set (copies share it), so caches notice key rotation.
  std::uint64_t generation() const noexcept { return generation_; }

 private:
  void index();

  std::vector<JsonWebKey> keys_;
  std::vector<std::pair<std::string_view, std::size_t>> by_kid_;  // sorted by kid
  std::vector<std::string> skipped_;
  std::uint64_t generation_;
};

}  // namespace gatehouse::auth
