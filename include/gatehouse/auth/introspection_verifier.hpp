// IntrospectionVerifier: opaque tokens checked by asking the authorization server (RFC 7662).
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gatehouse/auth/token_verifier.hpp"
#include "gatehouse/clock.hpp"
#include "gatehouse/tls_options.hpp"

namespace gatehouse::auth {

/// The cache of introspection answers.
struct IntrospectionCacheOptions {
  bool enabled = true;
  std::size_t max_entries = 10'000;
  /// Active answers are kept until the token's exp, but no longer than this.
  std::chrono::seconds max_active{300};
  /// Inactive answers are kept this long (0: not cached), so a bad token is not asked about again
  /// on every retry.
  std::chrono::seconds inactive{10};
};

struct IntrospectionVerifierOptions {
  /// Exactly one of the two. endpoint: the introspection URL. issuer: OpenID discovery, reading
  /// "introspection_endpoint" from <issuer>/.well-known/openid-configuration.
  std::string endpoint{};
  std::string issuer{};
  /// Client authentication: HTTP Basic with these (RFC 6749 §2.3.1), unless both are empty
  /// (then the endpoint must accept another way, e.g. the mTLS client certificate in `tls`).
  std::string client_id{};
  std::string client_secret{};
  /// The endpoint's certificate is always verified (ca_file or the system's bundle).
  UpstreamTls tls{};
  bool allow_plain_http = false;  ///< tests and local development only
  /// One introspection call (connect, TLS, request, response); longer fails closed.
  std::chrono::milliseconds timeout{3'000};
  /// When not empty, an active token's "aud" must contain one of these.
  std::vector<std::string> audiences{};
  /// When not empty, an active token's "iss" must be one of these.
  std::vector<std::string> issuers{};
  /// Clock skew allowed for exp and nbf in the answer.
  std::chrono::seconds leeway{30};
  /// Longer tokens are refused without asking.
  std::size_t max_token_bytes = 4096;
  /// Introspection calls in flight at once; more are answered introspection_unavailable at once,
  /// so that a flood of made-up tokens cannot pile up behind a slow endpoint.
  std::size_t max_pending = 256;
  IntrospectionCacheOptions cache{};
  /// Never null; tests pass a testing::FakeClock. Must outlive the verifier.
  const Clock* clock = &Clock::system();
};

struct IntrospectionVerifierStats {
  std::uint64_t calls = 0;     ///< introspection requests sent
  std::uint64_t failures = 0;  ///< of those, without a usable answer
  std::uint64_t cache_hits = 0;
};

/// The answer's members become the Claims (scope, sub, client_id, exp, ...), "active" removed.
/// Concurrent requests with the same uncached token share one call. A timeout, a transport or TLS
/// failure, a non-200 status or an answer that is not a JSON object with a boolean "active" is
/// introspection_unavailable: the request fails closed (503) unless configured otherwise.
class IntrospectionVerifier final : public TokenVerifier {
 public:
  /// Throws std::invalid_argument for bad options (URL not https, both or neither of endpoint and
  /// issuer, an unreadable CA file).
  explicit IntrospectionVerifier(IntrospectionVerifierOptions options);
  ~IntrospectionVerifier() override;
  IntrospectionVerifier(const IntrospectionVerifier&) = delete;
  IntrospectionVerifier& operator=(const IntrospectionVerifier&) = delete;

  asio::awaitable<VerifyResult> verify(std::string_view token) const override;
  /// Answers from the cache, else std::nullopt.
  std::optional<VerifyResult> try_verify_now(std::string_view token) const override;

  const IntrospectionVerifierOptions& options() const noexcept;

  IntrospectionVerifierStats stats() const;

  struct State;

 private:
  static asio::awaitable<VerifyResult> verify_owned(std::shared_ptr<State> state, std::string token,
                                                    const IntrospectionVerifier* self);
  std::shared_ptr<void> io_;  // the background thread; declared first, so released last
  std::shared_ptr<State> state_;
};

}  // namespace gatehouse::auth
