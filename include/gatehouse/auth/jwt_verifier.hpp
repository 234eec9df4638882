// JwtVerifier: verifies signed JWTs (compact JWS) against each issuer's keys, with a bounded cache.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gatehouse/auth/key_source.hpp"
#include "gatehouse/auth/token_verifier.hpp"
#include "gatehouse/clock.hpp"

namespace gatehouse::auth {

/// A trusted issuer: tokens whose "iss" equals `issuer` are checked with these keys, and only these.
struct JwtIssuer {
  std::string issuer{};
  std::shared_ptr<const KeySource> keys{};
};

struct VerifiedTokenCacheOptions {
  bool enabled = true;
  /// Bound on cached tokens; the least recently used go first.
  std::size_t max_entries = 10'000;
  /// A cached token is re-verified at least this often, even when exp is far away.
  std::chrono::seconds max_age{300};
};

struct JwtVerifierOptions {
  /// Required. The only algorithms accepted, whatever a token says, e.g. {"RS256", "ES256"}.
  std::vector<std::string> algorithms{};
  /// Required. The "iss" values accepted and the keys of each.
  std::vector<JwtIssuer> issuers{};
  /// When not empty, "aud" (string or array) must contain one of these.
  std::vector<std::string> audiences{};
  /// Clock skew allowed for exp, nbf and iat.
  std::chrono::seconds leeway{30};
  /// Refuse tokens without "exp".
  bool require_exp = true;
  /// Claims that must be present (and not null).
  std::vector<std::string> required_claims{};
  /// When set, the header "typ" must match, e.g. "at+jwt": case-insensitive, with or without the
  /// "application/" prefix.
  std::optional<std::string> typ{};
  /// Longer tokens are refused before any parsing.
  std::size_t max_token_bytes = 8192;
  /// Never null; tests pass a testing::FakeClock. Must outlive the verifier.
  const Clock* clock = &Clock::system();
  VerifiedTokenCacheOptions cache{};
};

/// Counters of a JwtVerifier's verified-token cache; all zero when the cache is off.
struct JwtVerifierStats {
  /// Lookups that found an entry (even one then refused as expired or re-verified after a key
  /// rotation).
  std::uint64_t cache_hits = 0;
  /// Lookups that found none.
  std::uint64_t cache_misses = 0;
  /// Tokens in the cache now.
  std::size_t cache_entries = 0;
};

class JwtVerifier final : public TokenVerifier {
 public:
  /// Throws std::invalid_argument when the options are incomplete or name an unknown algorithm.
  explicit JwtVerifier(JwtVerifierOptions options);
  ~JwtVerifier() override;
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  asio::awaitable<VerifyResult> verify(std::string_view token) const override;
  /// Decides without I/O unless the token names a kid the issuer's current keys lack (or no keys
  /// were loaded yet) and the key source can refresh.
  std::optional<VerifyResult> try_verify_now(std::string_view token) const override;

  const JwtVerifierOptions& options() const noexcept;

  JwtVerifierStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gatehouse::auth
