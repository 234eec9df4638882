// The security events of the Authenticate and Authorize middleware. Called only when the exchange
// has a SecurityEvents (the middleware tests the pointer first), so the cost of building an
// event is paid only when someone listens.
#pragma once
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "gatehouse/auth/token_verifier.hpp"
#include "gatehouse/exchange.hpp"
#include "gatehouse/middleware/authorize.hpp"

namespace gatehouse::detail {

/// authentication_failure. `token` is only looked at, never reported: its JWT header's "kid"
/// becomes labels.key_id, and any occurrence of it in `detail` is redacted. labels.verifier names
/// the verifier types tried ("jwt", "introspection", "api_keys", "custom"). `status` is the answer
/// (401, 400, 503), 0 when the request was let through (optional credential, fail-open).
void report_authentication_failure(Exchange& ex, std::span<const std::shared_ptr<const auth::TokenVerifier>> verifiers,
                                   std::string_view token, std::error_code error, std::string_view detail,
                                   unsigned status);

/// authorization_denied: rule.name describes the rule, labels.missing_scopes lists the scopes
/// that were missing. `status` is 401 (no claims) or 403.
void report_authorization_denied(Exchange& ex, const Rule& rule, const std::vector<std::string>& missing,
                                 unsigned status);

/// The rule as text, bounded: "scopes(orders:read)", "any_of(claim plan == pro, ...)".
std::string describe_rule(const Rule& rule);

}  // namespace gatehouse::detail
