// RemoteKeySource: an issuer's keys from its HTTPS JWKS URL, found directly or by OpenID discovery.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gatehouse/auth/key_source.hpp"
#include "gatehouse/logger.hpp"
#include "gatehouse/tls_options.hpp"

namespace gatehouse::auth {

struct RemoteKeySourceOptions {
  /// Exactly one of the two. jwks_uri: the JWKS document itself. issuer: OpenID discovery, reading
  /// jwks_uri from <issuer>/.well-known/openid-configuration, whose "issuer" must equal this.
  std::string jwks_uri{};
  std::string issuer{};
  /// The key server's certificate is always verified: against ca_file (empty: the system's CA
  /// bundle) and the URL's host. A client certificate may be added for mTLS.
  UpstreamTls tls{};
  /// http:// URLs are refused unless this is set (for tests and local development only).
  bool allow_plain_http = false;
  /// A whole fetch (connect, TLS, request, response) must finish within this.
  std::chrono::milliseconds fetch_timeout{5'000};
  /// Larger documents are refused (the last good keys stay).
  std::size_t max_document_bytes = 512 * 1024;
  /// The document is fetched again after its Cache-Control max-age, bounded by these two, or
  /// after default_refresh when the server sends no max-age.
  std::chrono::seconds min_refresh{60};
  std::chrono::seconds max_refresh{24 * 3600};
  std::chrono::seconds default_refresh{15 * 60};
  /// A token naming an unknown kid triggers a fetch at most this often, so that made-up kids
  /// cannot turn into a flood of requests to the key server.
  std::chrono::seconds unknown_kid_interval{10};
  /// After a failed fetch, the next try waits retry_min, doubling up to retry_max (with jitter).
  std::chrono::seconds retry_min{1};
  std::chrono::seconds retry_max{300};
  /// Where fetch failures (warning; error while no keys were ever loaded) and key changes (info)
  /// are reported. Null: the process-wide logger (gatehouse::logger()).
  std::shared_ptr<Logger> logger{};
};

struct RemoteKeySourceStats {
  std::uint64_t fetches = 0;   ///< attempts, successful or not
  std::uint64_t failures = 0;  ///< of those, failed
  std::size_t keys = 0;        ///< keys in the current set
  std::string jwks_uri;        ///< as configured or discovered ("" before discovery)
  std::string last_error;      ///< of the most recent failed fetch ("" if none)
};

/// Fetches in the background on one library-wide I/O thread, never on a worker. The last good keys
/// keep serving while the key server is unreachable or answers garbage; before the first success
/// current() is nullptr and tokens fail closed (key_source_unavailable). Concurrent requests for an
/// unknown kid share one fetch.
class RemoteKeySource final : public KeySource {
 public:
  /// Starts the first fetch at once. Throws std::invalid_argument for bad options (a URL that is
  /// not https, both or neither of jwks_uri and issuer, an unreadable CA file).
  explicit RemoteKeySource(RemoteKeySourceOptions options);
  ~RemoteKeySource() override;
  RemoteKeySource(const RemoteKeySource&) = delete;
  RemoteKeySource& operator=(const RemoteKeySource&) = delete;

  std::shared_ptr<const JwkSet> current() const override;
  std::uint64_t generation() const noexcept override;
  asio::awaitable<std::shared_ptr<const JwkSet>> refresh_for_unknown_kid(std::string kid) const override;

  /// Blocks until the first fetch finished (or `timeout` passed); true when keys are at hand.
  /// For startup code that prefers to wait rather than answer 503 for the first requests.
  bool wait_ready(std::chrono::milliseconds timeout) const;

  RemoteKeySourceStats stats() const;

  const RemoteKeySourceOptions& options() const noexcept;

  struct State;

 private:
  std::shared_ptr<void> io_;  // the background thread; declared first, so released last
  std::shared_ptr<State> state_;
};

}  // namespace gatehouse::auth
