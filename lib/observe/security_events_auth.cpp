#include "observe/security_events_auth.hpp"

#include <nlohmann/json.hpp>

#include "auth/base64url.hpp"
#include "gatehouse/auth/api_key_verifier.hpp"
#include "gatehouse/auth/introspection_verifier.hpp"
#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/security_events.hpp"

namespace gatehouse::detail {
namespace {

constexpr std::size_t kMaxRuleText = 200;

std::string_view verifier_type(const auth::TokenVerifier& v) noexcept {
  if (dynamic_cast<const auth::JwtVerifier*>(&v)) return "jwt";
  if (dynamic_cast<const auth::IntrospectionVerifier*>(&v)) return "introspection";
  if (dynamic_cast<const auth::ApiKeyVerifier*>(&v)) return "api_keys";
  return "custom";
}

// The "kid" of a JWT-shaped token's header (not verified: the token was refused). Empty if none.
std::string key_id(std::string_view token) {
  const auto dot = token.find('.');
  if (dot == std::string_view::npos || dot > 4096 || token.find('.', dot + 1) == std::string_view::npos) return {};
  std::string header;
  if (!auth::base64url_decode(token.substr(0, dot), header)) return {};
  const auto j = nlohmann::json::parse(header, nullptr, false);
  if (!j.is_object()) return {};
  const auto kid = j.find("kid");
  if (kid == j.end() || !kid->is_string()) return {};
  return kid->get<std::string>();
}

// Belt and braces: a verifier's detail should never quote the token, but if one did, it must not
// leave the process through an event.
std::string redact(std::string_view text, std::string_view token) {
  std::string out(text);
  if (token.size() < 8) return out;
  for (std::size_t at; (at = out.find(token)) != std::string::npos;) out.replace(at, token.size(), "[redacted]");
  return out;
}

void describe(const Rule& r, std::string& out) {
  if (out.size() > kMaxRuleText) return;
  auto join = [&out](const std::vector<std::string>& v, std::string_view sep) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i) out += sep;
      out += v[i];
    }
  };
  switch (r.kind) {
    case Rule::Kind::scopes:
      out += "scopes(";
      join(r.values, " ");
      out += ')';
      break;
    case Rule::Kind::equals: out += "claim " + r.claim + " == " + (r.values.empty() ? "" : r.values[0]); break;
    case Rule::Kind::contains: out += "claim " + r.claim + " contains " + (r.values.empty() ? "" : r.values[0]); break;
    case Rule::Kind::in:
      out += "claim " + r.claim + " in (";
      join(r.values, ", ");
      out += ')';
      break;
    case Rule::Kind::spiffe_id:
    case Rule::Kind::principal:
      out += r.kind == Rule::Kind::spiffe_id ? "spiffe_id in (" : "principal in (";
      join(r.values, ", ");
      out += ')';
      break;
    case Rule::Kind::any_of:
    case Rule::Kind::all_of:
      out += r.kind == Rule::Kind::any_of ? "any_of(" : "all_of(";
      for (std::size_t i = 0; i < r.children.size(); ++i) {
        if (i) out += ", ";
        describe(r.children[i], out);
      }
      out += ')';
      break;
  }
}

}  // namespace

std::string describe_rule(const Rule& rule) {
  std::string out;
  describe(rule, out);
  if (out.size() > kMaxRuleText) {
    out.resize(kMaxRuleText);
    out += "...";
  }
  return out;
}

void report_authentication_failure(Exchange& ex, std::span<const std::shared_ptr<const auth::TokenVerifier>> verifiers,
                                   std::string_view token, std::error_code error, std::string_view detail,
                                   unsigned status) {
  if (!ex.security_events()) return;
  SecurityEvent e;
  e.kind = SecurityEventKind::authentication_failure;
  e.outcome = SecurityEventOutcome::failure;
  e.http_status = status;
  std::string reason = error ? error.message() : std::string();
  if (!detail.empty()) {
    if (!reason.empty()) reason += ": ";
    reason += redact(detail, token);
  }
  e.reason = std::move(reason);
  std::string types;
  for (const auto& v : verifiers) {
    if (!v) continue;
    const std::string_view t = verifier_type(*v);
    if (types.find(t) != std::string::npos) continue;
    if (!types.empty()) types += ',';
    types += t;
  }
  if (!types.empty()) e.label("verifier", std::move(types));
  if (error) e.label("error", error.message());
  if (!token.empty()) {
    if (std::string kid = key_id(token); !kid.empty()) e.label("key_id", std::move(kid));
  }
  if (status == 0) e.label("decision", "passed");
  ex.report(std::move(e));
}

void report_authorization_denied(Exchange& ex, const Rule& rule, const std::vector<std::string>& missing,
                                 unsigned status) {
  if (!ex.security_events()) return;
  SecurityEvent e;
  e.kind = SecurityEventKind::authorization_denied;
  e.outcome = SecurityEventOutcome::failure;
  e.http_status = status;
  e.rule_name = describe_rule(rule);
  if (status == 401) {
    e.reason = "not authenticated";
  } else if (!missing.empty()) {
    std::string scopes;
    for (const auto& s : missing) {
      if (!scopes.empty()) scopes += ' ';
      scopes += s;
    }
    e.reason = "insufficient scope";
    e.label("missing_scopes", std::move(scopes));
  } else {
    e.reason = "rule not satisfied";
  }
  ex.report(std::move(e));
}

}  // namespace gatehouse::detail
