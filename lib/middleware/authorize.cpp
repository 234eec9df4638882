#include "gatehouse/middleware/authorize.hpp"

#include <algorithm>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "observe/security_events_auth.hpp"
#include "util/text.hpp"

namespace gatehouse {
namespace {

using detail::is_scope_token;

auth::ClaimValue lookup(const auth::Claims& claims, const std::string& name) {
  return name.starts_with('/') ? claims.at(name) : claims.get(name);
}

bool contains_word(std::string_view list, std::string_view word) {
  while (!list.empty()) {
    const std::size_t sp = list.find(' ');
    if (list.substr(0, sp) == word) return true;
    if (sp == std::string_view::npos) break;
    list.remove_prefix(sp + 1);
  }
  return false;
}

void validate(const Rule& r) {
  auto fail = [](const std::string& why) { throw std::invalid_argument("Authorize: " + why); };
  switch (r.kind) {
    case Rule::Kind::scopes:
      if (r.values.empty()) fail("a scopes rule needs at least one scope");
      for (const auto& s : r.values) {
        if (!is_scope_token(s)) fail("invalid scope \"" + s + "\"");
      }
      break;
    case Rule::Kind::equals:
    case Rule::Kind::contains:
    case Rule::Kind::in:
      if (r.claim.empty()) fail("a claim rule needs a claim name");
      if (r.values.empty() || (r.kind != Rule::Kind::in && r.values.size() != 1)) {
        fail("claim rule on \"" + r.claim + "\" needs " + (r.kind == Rule::Kind::in ? "values" : "one value"));
      }
      break;
    case Rule::Kind::spiffe_id:
      if (r.values.empty()) fail("a spiffe_id rule needs at least one SPIFFE ID");
      for (const auto& v : r.values) {
        const std::string_view id = std::string_view(v).ends_with("/*") ? std::string_view(v).substr(0, v.size() - 2) : v;
        if (!is_spiffe_id(id)) fail("invalid SPIFFE ID \"" + v + "\"");
      }
      break;
    case Rule::Kind::principal:
      if (r.values.empty()) fail("a principal rule needs at least one principal");
      for (const auto& v : r.values) {
        if (!is_principal(v)) fail("invalid principal \"" + v + "\" (spiffe://..., dns:, uri:, email:, ip: or subject:)");
      }
      break;
    case Rule::Kind::any_of:
    case Rule::Kind::all_of:
      // An empty all_of would let everyone in; an empty any_of no one. Both are configuration slips.
      if (r.children.empty()) fail("any_of and all_of need at least one rule");
      for (const auto& c : r.children) validate(c);
      break;
  }
}

}  // namespace

Rule Rule::require_scopes(std::vector<std::string> scopes) { return {Kind::scopes, {}, std::move(scopes), {}}; }
Rule Rule::claim_equals(std::string claim, std::string value) {
  return {Kind::equals, std::move(claim), {std::move(value)}, {}};
}
Rule Rule::claim_contains(std::string claim, std::string value) {
  return {Kind::contains, std::move(claim), {std::move(value)}, {}};
}
Rule Rule::claim_in(std::string claim, std::vector<std::string> values) {
  return {Kind::in, std::move(claim), std::move(values), {}};
}
Rule Rule::spiffe_id_in(std::vector<std::string> ids) { return {Kind::spiffe_id, {}, std::move(ids), {}}; }
Rule Rule::principal_in(std::vector<std::string> principals) {
  return {Kind::principal, {}, std::move(principals), {}};
}
Rule Rule::any_of(std::vector<Rule> rules) { return {Kind::any_of, {}, {}, std::move(rules)}; }
Rule Rule::all_of(std::vector<Rule> rules) { return {Kind::all_of, {}, {}, std::move(rules)}; }

bool Rule::holds(const auth::Claims& claims, std::vector<std::string>* missing) const {
  return holds(claims, nullptr, missing);
}

bool Rule::uses_claims() const noexcept {
  switch (kind) {
    case Kind::spiffe_id:
    case Kind::principal: return false;
    case Kind::any_of:
    case Kind::all_of:
      return std::any_of(children.begin(), children.end(), [](const Rule& c) { return c.uses_claims(); });
    default: return true;
  }
}

bool Rule::holds(const auth::Claims& claims, const ClientIdentity* identity, std::vector<std::string>* missing) const {
  switch (kind) {
    case Kind::spiffe_id:
      return identity && std::any_of(values.begin(), values.end(),
                                     [&](const std::string& v) { return identity->spiffe_id_matches(v); });
    case Kind::principal:
      return identity &&
             std::any_of(values.begin(), values.end(), [&](const std::string& v) { return identity->has_principal(v); });
    case Kind::scopes: {
      bool ok = true;
      for (const auto& s : values) {
        if (claims.has_scope(s)) continue;
        ok = false;
        if (missing && std::find(missing->begin(), missing->end(), s) == missing->end()) missing->push_back(s);
      }
      return ok;
    }
    case Kind::equals: {
      const auth::ClaimValue v = lookup(claims, claim);
      if (!v) return false;
      if (auto s = v.string()) return *s == values[0];
      return v.dump() == values[0];
    }
    case Kind::contains: {
      const auth::ClaimValue v = lookup(claims, claim);
      if (auto s = v.string()) return contains_word(*s, values[0]);
      if (!v.is_array()) return false;
      const auto items = v.strings();
      return std::find(items.begin(), items.end(), values[0]) != items.end();
    }
    case Kind::in: {
      const auto s = lookup(claims, claim).string();
      return s && std::find(values.begin(), values.end(), *s) != values.end();
    }
    case Kind::any_of: {
      // Evaluate every child, so that `missing` names the scopes of each alternative.
      std::vector<std::string> alternatives;
      bool ok = false;
      for (const auto& c : children) ok = c.holds(claims, identity, &alternatives) || ok;
      if (!ok && missing) {
        for (auto& s : alternatives) {
          if (std::find(missing->begin(), missing->end(), s) == missing->end()) missing->push_back(std::move(s));
        }
      }
      return ok;
    }
    case Kind::all_of: {
      bool ok = true;
      for (const auto& c : children) ok = c.holds(claims, identity, missing) && ok;
      return ok;
    }
  }
  return false;
}

Authorize::Authorize(AuthorizeOptions options) : options_(std::move(options)) {
  validate(options_.rule);
  if (!detail::fits_quoted_string(options_.realm)) {
    throw std::invalid_argument("Authorize: the realm must not contain '\"', '\\' or control characters");
  }
}

Flow Authorize::on_request(Exchange& ex) const {
  const auth::Claims* claims = ex.find<auth::Claims>();
  const ClientIdentity* identity = ex.client_identity();
  if (!claims && !identity) {
    if (ex.security_events()) detail::report_authorization_denied(ex, options_.rule, {}, 401);
    Flow f = Flow::respond(Status::unauthorized);
    f.response().headers().set("www-authenticate", "Bearer realm=\"" + options_.realm + "\"");
    return f;
  }
  std::vector<std::string> missing;
  static const auth::Claims no_claims;
  if (options_.rule.holds(claims ? *claims : no_claims, identity, &missing)) return Flow::next();
  // A caller known only by its certificate, refused by a rule a token could satisfy: 401.
  const bool token_could_help = !claims && options_.rule.uses_claims();
  const unsigned status = token_could_help ? 401 : 403;
  if (ex.security_events()) detail::report_authorization_denied(ex, options_.rule, missing, status);
  Flow f = Flow::respond(token_could_help ? Status::unauthorized : Status::forbidden);
  if (token_could_help) {
    f.response().headers().set("www-authenticate", "Bearer realm=\"" + options_.realm + "\"");
    return f;
  }
  if (!missing.empty()) {
    std::string scope;
    for (const auto& s : missing) {
      if (!scope.empty()) scope += ' ';
      scope += s;
    }
    f.response().headers().set("www-authenticate", "Bearer realm=\"" + options_.realm +
                                                       "\", error=\"insufficient_scope\", scope=\"" + scope + "\"");
  }
  return f;
}

}  // namespace gatehouse
