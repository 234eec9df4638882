// Authorize: a per-route policy on the Claims that Authenticate stored.
#pragma once
#include <string>
#include <vector>

#include "gatehouse/auth/claims.hpp"
#include "gatehouse/client_identity.hpp"
#include "gatehouse/middleware.hpp"

namespace gatehouse {

/// A small rule tree. Claim names starting with '/' are JSON pointers ("/realm_access/roles").
struct Rule {
  enum class Kind : unsigned char {
    scopes,    ///< every scope in `values` is granted
    equals,    ///< claim == values[0] (non-string claims compare as compact JSON)
    contains,  ///< the array claim, or the space-separated string claim, holds values[0]
    in,        ///< the string claim is one of `values`
    any_of,    ///< at least one child holds
    all_of,    ///< every child holds
    spiffe_id,  ///< the client certificate's SPIFFE ID is one of `values` ("spiffe://td/path", or a
                ///< prefix ending in "/*")
    principal,  ///< the client certificate has one of `values` (ClientIdentity::has_principal)
  };
  Kind kind = Kind::all_of;
  std::string claim{};
  std::vector<std::string> values{};
  std::vector<Rule> children{};

  static Rule require_scopes(std::vector<std::string> scopes);
  static Rule claim_equals(std::string claim, std::string value);
  static Rule claim_contains(std::string claim, std::string value);
  static Rule claim_in(std::string claim, std::vector<std::string> values);
  static Rule any_of(std::vector<Rule> rules);
  static Rule all_of(std::vector<Rule> rules);
  /// Rules on the verified client certificate (downstream mTLS): no token needed.
  static Rule spiffe_id_in(std::vector<std::string> ids);
  static Rule principal_in(std::vector<std::string> principals);

  /// True when `claims` satisfy the rule. Scopes of failed scope rules are appended to `missing`.
  /// Certificate rules do not hold (there is no certificate).
  bool holds(const auth::Claims& claims, std::vector<std::string>* missing = nullptr) const;
  /// The same with the client certificate's identity (null: none).
  bool holds(const auth::Claims& claims, const ClientIdentity* identity, std::vector<std::string>* missing) const;
  /// Whether some part of the rule looks at token claims or scopes.
  bool uses_claims() const noexcept;
};

struct AuthorizeOptions {
  Rule rule{};
  /// Sent in WWW-Authenticate; no '"', '\\' or control characters.
  std::string realm = "gatehouse";
};

/// No Claims in the exchange (Authenticate did not run, or let the request through
/// unauthenticated) and no verified client certificate: 401. Rule fails: 403, with
/// WWW-Authenticate error="insufficient_scope" and the scopes needed when scopes are missing; 401
/// when there were no claims and the rule needs some (a token could still satisfy it).
class Authorize final : public Middleware {
 public:
  /// Throws std::invalid_argument for an empty any_of/all_of, a missing claim name or value, a
  /// scope that is not an RFC 6749 scope token, or a bad realm.
  explicit Authorize(AuthorizeOptions options);
  Flow on_request(Exchange& ex) const override;

  const AuthorizeOptions& options() const noexcept { return options_; }

 private:
  AuthorizeOptions options_;
};

}  // namespace gatehouse
