// Authenticate: verifies a bearer token, stores its Claims and tells the upstream who the caller is.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "gatehouse/auth/claims.hpp"
#include "gatehouse/auth/token_verifier.hpp"
#include "gatehouse/logger.hpp"
#include "gatehouse/middleware.hpp"

namespace gatehouse {

/// Where the token is read from.
struct CredentialSource {
  enum class Kind : unsigned char { header, cookie, query };
  Kind kind = Kind::header;
  /// Header, cookie or query parameter name. The Authorization header requires the "Bearer"
  /// scheme; any other header holds the bare token (an optional "Bearer " prefix is accepted).
  std::string name = "authorization";

  static CredentialSource header(std::string name) { return {Kind::header, std::move(name)}; }
  static CredentialSource cookie(std::string name) { return {Kind::cookie, std::move(name)}; }
  static CredentialSource query(std::string name) { return {Kind::query, std::move(name)}; }
};

/// Request headers that carry the verified identity to the upstream. An empty name turns one off.
/// Every one of them is removed from the incoming request first, so clients cannot forge them.
struct IdentityHeaders {
  std::string subject = "x-auth-subject";  ///< the "sub" claim
  std::string scopes = "x-auth-scopes";    ///< scopes, space-separated
  /// claim name (or JSON pointer, "/realm_access/roles") -> header name. Arrays are joined with
  /// spaces; other non-string values are sent as compact JSON.
  std::vector<std::pair<std::string, std::string>> claims{};
};

/// Why a request was not authenticated, stored in the exchange for logs (never sent to clients).
struct AuthFailure {
  std::error_code error;
  std::string reason;  ///< error message and the verifier's detail
};

struct AuthenticateOptions {
  /// Tried in order until one accepts; at least one, none null.
  std::vector<std::shared_ptr<const auth::TokenVerifier>> verifiers{};
  /// Names of the verifiers, in the same order, for the "verifier" label of the gateway's
  /// gatehouse_auth_total metric (the configuration file uses the names of its "verifiers"
  /// section). A missing or empty name: "verifier<index>".
  std::vector<std::string> verifier_names{};
  CredentialSource source{};
  /// Sent in WWW-Authenticate; no '"', '\\' or control characters.
  std::string realm = "gatehouse";
  /// No credential: pass through unauthenticated. A bad credential is still refused.
  bool optional = false;
  /// The verifier cannot decide (keys unavailable, internal error): pass through unauthenticated
  /// instead of answering 503. Identity headers are still stripped.
  bool fail_open_when_unavailable = false;
  IdentityHeaders identity{};
  /// false: remove the credential (header, cookie or query parameter) before forwarding.
  bool forward_token = true;
  /// Every refused credential (info) and every undecided one (warning) is logged here with the
  /// exact reason: "authenticate: credential refused" (or "undecided") with the fields request_id,
  /// route, error and detail. Null: the process-wide logger (gatehouse::logger()).
  std::shared_ptr<Logger> logger{};
};

/// Answers 401 (no or bad token, RFC 6750 WWW-Authenticate), 400 (several credentials) or 503
/// (verifier unavailable, unless configured to fail open). On success the auth::Claims are stored
/// in the exchange (ex.find<auth::Claims>()) for Authorize and later middleware.
class Authenticate final : public Middleware {
 public:
  /// Throws std::invalid_argument for missing verifiers, bad header names or a bad realm.
  explicit Authenticate(AuthenticateOptions options);
  Flow on_request(Exchange& ex) const override;

  const AuthenticateOptions& options() const noexcept { return options_; }

 private:
  asio::awaitable<Flow> verify_later(Exchange& ex, std::string token, std::size_t first,
                                     std::optional<auth::VerifyResult> best, std::size_t best_index) const;
  /// `verifier`: the index of the verifier whose result this is; `token`: the credential, for
  /// security events.
  Flow finish(Exchange& ex, auth::VerifyResult result, std::size_t verifier, std::string_view token) const;
  void set_identity(Exchange& ex, const auth::Claims& claims) const;
  void remove_credential(Exchange& ex) const;

  AuthenticateOptions options_;
  std::string challenge_;  // WWW-Authenticate without error code
  std::string invalid_challenge_;
  std::vector<std::string> verifier_labels_;  // metrics label of each verifier
};

}  // namespace gatehouse
