// ApiKeyVerifier: static API keys, stored as SHA-256 digests, each mapped to a principal and scopes.
#pragma once
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gatehouse/auth/token_verifier.hpp"

namespace gatehouse::auth {

/// One accepted key. The key itself is never stored: only its digest, so a configuration (or a
/// memory dump) does not hand out working credentials. Keys must be long and random (128 bits of
/// entropy or more, e.g. `openssl rand -hex 32`): a plain digest is no defence for guessable keys.
struct ApiKey {
  /// The 64 hex digits of SHA-256(key), upper or lower case: `printf %s "$KEY" | sha256sum`.
  std::string sha256{};
  /// Who the key belongs to; becomes the "sub" claim. Non-empty, no control characters.
  std::string principal{};
  /// Granted scopes (RFC 6749 scope tokens: printable ASCII except space, '"' and '\\').
  std::vector<std::string> scopes{};
  /// Optional label naming the key in logs and in the "gatehouse_api_key_id" claim ("ci-2024").
  /// Never the key. Unique when set; no control characters.
  std::string id{};
};

struct ApiKeyVerifierOptions {
  /// Required, non-empty; no two with the same digest.
  std::vector<ApiKey> keys{};
  /// Longer keys are refused (token_too_large) before hashing. 1..65536.
  std::size_t max_key_bytes = 512;
};

/// Verifies a presented key by hashing it and looking the digest up; the final comparison runs in
/// constant time. Always answers synchronously (try_verify_now() never returns std::nullopt).
///
/// Claims on success, built once per key at construction and shared by every request:
///   {"sub": principal, "scope": "a b c" (only when there are scopes), "gatehouse_api_key_id": id
///   (only when set)}
/// so Authorize's scope rules and Authenticate's identity headers work as with a JWT.
///
/// Refusals: an empty key or one with a byte outside printable ASCII (space, control, non-ASCII):
/// malformed; longer than max_key_bytes: token_too_large; no such key: unknown_key. The detail
/// (logs only) never holds the key, at most the first 8 hex digits of its digest.
class ApiKeyVerifier final : public TokenVerifier {
 public:
  /// Throws std::invalid_argument for no keys, a digest that is not 64 hex digits, two keys with one
  /// digest or one id, an empty principal, control characters, an invalid scope or a bad
  /// max_key_bytes. Messages name keys by index and id, never by digest.
  explicit ApiKeyVerifier(ApiKeyVerifierOptions options);
  ~ApiKeyVerifier() override;
  ApiKeyVerifier(const ApiKeyVerifier&) = delete;
  ApiKeyVerifier& operator=(const ApiKeyVerifier&) = delete;

  asio::awaitable<VerifyResult> verify(std::string_view token) const override;
  /// Always has a value.
  std::optional<VerifyResult> try_verify_now(std::string_view token) const override;
  /// What both of the above return, without the optional or the coroutine.
  VerifyResult check(std::string_view key) const;

  /// Number of configured keys.
  std::size_t size() const noexcept;
  std::size_t max_key_bytes() const noexcept;

  /// SHA-256 of `key` as 64 lowercase hex digits: the value for ApiKey::sha256. For tooling and
  /// tests. Throws std::runtime_error if OpenSSL fails.
  static std::string hash(std::string_view key);

 private:
  struct Impl;
  std::unique_ptr<const Impl> impl_;
};

}  // namespace gatehouse::auth
