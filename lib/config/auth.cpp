// Options of the top-level "verifiers" section and of the "authenticate" and "authorize" built-in
// middleware (see config.cpp for the conventions: strict keys, errors at the JSON pointer of the
// offending key). docs/config.md has the same text with examples.
//
//   verifiers     (top level) {name: {"type": "jwt", JWT keys below}}; type "api_keys": config_api_keys.cpp
//   JWT keys      issuers: [{issuer, one of jwks_file | jwks (inline JWKS object) | pem_file}] (required),
//                 algorithms: ["RS256", ...] (required), audiences: [], leeway_s: 0..3600 (30),
//                 required_claims: [], typ: string, max_token_bytes: 256..1048576 (8192),
//                 cache: {enabled: true, max_entries: 1..10000000 (10000), max_age_s: 1..86400 (300)}
//   authenticate  {verifiers: [names] or the JWT keys inline (not both),
//                  credential: {header | cookie | query: name} ({"header": "authorization"}),
//                  realm: "gatehouse", optional: false, fail_open_when_unavailable: false,
//                  forward_token: true, identity: {subject: "x-auth-subject", scopes: "x-auth-scopes",
//                  claims: {claim: header}} ("" turns a header off)}
//   authorize     {scopes: [], claims: [{claim, one of equals | contains | in}], any_of: false,
//                  realm: "gatehouse"}; with any_of, the scopes (all of them) are one alternative.

#include "config/auth.hpp"
#include "config/json.hpp"
#include "util/text.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/jws_algorithm.hpp"
#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/auth/key_source.hpp"
#include "gatehouse/auth/remote_key_source.hpp"
#include "gatehouse/config.hpp"
#include "gatehouse/middleware/authenticate.hpp"
#include "gatehouse/middleware/authorize.hpp"

namespace gatehouse::detail {
namespace {

using nlohmann::json;

using namespace config_json;  // the loaders' shared JSON helpers

std::string header_name(const json& j, const std::string& path) {
  const std::string& s = as_string(j, path);
  if (!is_token(s)) throw ConfigError(path, "invalid header name " + quote(s) + ": expected an HTTP token");
  return s;
}

// A list of distinct non-empty strings.
std::vector<std::string> string_list(const json& j, const std::string& path, std::string_view what) {
  std::vector<std::string> out;
  std::size_t i = 0;
  for (const json& item : as_array(j, path)) {
    const std::string p = child(path, i++);
    std::string s = name_string(item, p, what);
    if (std::find(out.begin(), out.end(), s) != out.end()) throw ConfigError(p, "duplicate " + quote(s));
    out.push_back(std::move(s));
  }
  return out;
}

// Quoted in WWW-Authenticate, so it must not be able to end the quoted-string.
std::string realm(const Object& o) {
  const json* v = o.find("realm");
  if (!v) return "gatehouse";
  const std::string& s = as_string(*v, o.at("realm"));
  if (!detail::fits_quoted_string(s)) {
    throw ConfigError(o.at("realm"), "must not contain '\"', '\\' or control characters");
  }
  return s;
}

// A URL option: absolute http(s), https unless plain http is allowed.
std::string url_option(const json& j, const std::string& path, bool allow_plain_http) {
  const std::string& s = as_string(j, path);
  const bool https = s.size() >= 8 && std::equal(s.begin(), s.begin() + 8, "https://", [](char a, char b) {
                       return std::tolower(static_cast<unsigned char>(a)) == b;
                     });
  if (!https && !allow_plain_http) throw ConfigError(path, "expected an https:// URL, got " + quote(s));
  return s;
}

std::shared_ptr<const auth::KeySource> remote_key_source(const Object& o, const std::string& which,
                                                         const std::string& issuer) {
  auth::RemoteKeySourceOptions r;
  r.allow_plain_http = o.boolean("allow_plain_http", false);
  if (which == "jwks_uri") {
    r.jwks_uri = url_option(*o.find(which), o.at(which), r.allow_plain_http);
  } else {
    if (!as_bool(*o.find(which), o.at(which))) throw ConfigError(o.at(which), "expected true (or leave it out)");
    r.issuer = url_option(json(issuer), o.at("issuer"), r.allow_plain_http);
  }
  if (const json* ca = o.find("ca_file")) r.tls.ca_file = readable_file(*ca, o.at("ca_file"));
  r.fetch_timeout = o.duration("fetch_timeout_ms", r.fetch_timeout);
  auto secs = [&o](const char* key, std::chrono::seconds def) {
    return std::chrono::seconds(o.integer(key, 1, 7 * 86'400, def.count()));
  };
  r.min_refresh = secs("min_refresh_s", r.min_refresh);
  r.max_refresh = secs("max_refresh_s", r.max_refresh);
  r.default_refresh = secs("default_refresh_s", std::clamp(r.default_refresh, r.min_refresh, r.max_refresh));
  r.unknown_kid_interval = secs("unknown_kid_interval_s", r.unknown_kid_interval);
  if (r.max_refresh < r.min_refresh) throw ConfigError(o.at("max_refresh_s"), "must be at least min_refresh_s");
  if (r.default_refresh < r.min_refresh || r.default_refresh > r.max_refresh) {
    throw ConfigError(o.at("default_refresh_s"), "must lie between min_refresh_s and max_refresh_s");
  }
  try {
    return std::make_shared<auth::RemoteKeySource>(std::move(r));
  } catch (const std::exception& e) {
    throw ConfigError(o.at(which), e.what());
  }
}

const std::vector<std::string> kRemoteKeys = {"ca_file",           "allow_plain_http", "fetch_timeout_ms",
                                              "min_refresh_s",     "max_refresh_s",    "default_refresh_s",
                                              "unknown_kid_interval_s"};

std::shared_ptr<const auth::KeySource> key_source(const Object& o, const std::vector<auth::JwsAlgorithm>& algs,
                                                  const std::string& issuer) {
  const std::string which = o.one_of({"jwks_file", "jwks", "pem_file", "jwks_uri", "discovery"});
  if (which == "jwks_uri" || which == "discovery") return remote_key_source(o, which, issuer);
  for (const auto& key : kRemoteKeys) {
    if (o.find(key)) throw ConfigError(o.at(key), "only for remote keys (\"jwks_uri\" or \"discovery\")");
  }
  const std::string p = o.at(which);
  std::shared_ptr<const auth::KeySource> keys;
  try {
    if (which == "jwks") {
      keys = auth::StaticKeySource::from_jwks(as_object(*o.find(which), p).dump());
    } else {
      keys = auth::StaticKeySource::from_file(readable_file(*o.find(which), p));
    }
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError(p, std::string("cannot load keys: ") + e.what());
  }
  // A key set that can verify none of the algorithms would refuse every token: say so now.
  const auto set = keys->current();
  const bool usable = set && std::any_of(set->keys().begin(), set->keys().end(), [&](const auth::JsonWebKey& k) {
    return std::any_of(algs.begin(), algs.end(), [&](auth::JwsAlgorithm a) { return k.can_verify(a); });
  });
  if (!usable) throw ConfigError(p, "no key can verify any of the configured \"algorithms\"");
  return keys;
}

CredentialSource credential(const json& j, const std::string& path) {
  Object o(j, path, {"header", "cookie", "query"});
  const std::string which = o.one_of({"header", "cookie", "query"});
  const std::string p = o.at(which);
  if (which == "header") return CredentialSource::header(header_name(*o.find(which), p));
  std::string name = name_string(*o.find(which), p, which + " name");
  if (name.find_first_of(";=&, \t") != std::string::npos) {
    throw ConfigError(p, "invalid " + which + " name " + quote(name));
  }
  return which == "cookie" ? CredentialSource::cookie(std::move(name)) : CredentialSource::query(std::move(name));
}

IdentityHeaders identity(const json& j, const std::string& path) {
  Object o(j, path, {"subject", "scopes", "claims"});
  IdentityHeaders id;
  // "" turns a header off.
  auto optional_header = [&o](const std::string& key, std::string def) {
    const json* v = o.find(key);
    if (!v) return def;
    if (v->is_string() && v->get_ref<const std::string&>().empty()) return std::string();
    return header_name(*v, o.at(key));
  };
  id.subject = optional_header("subject", id.subject);
  id.scopes = optional_header("scopes", id.scopes);
  if (const json* c = o.find("claims")) {
    const std::string cp = o.at("claims");
    for (const auto& [claim, header] : as_object(*c, cp).items()) {
      const std::string p = child(cp, claim);
      if (claim.empty()) throw ConfigError(p, "claim name must not be empty");
      id.claims.emplace_back(claim, header_name(header, p));
    }
  }
  return id;
}

// The JWT verifier's keys, shared by the "verifiers" section and an inline "authenticate".
const std::vector<std::string> kJwtKeys = {"issuers",  "algorithms",      "audiences", "leeway_s", "required_claims",
                                           "typ",      "max_token_bytes", "cache"};

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::shared_ptr<const auth::TokenVerifier> jwt_verifier(const Object& o, const std::string& path) {
  auth::JwtVerifierOptions v;

  // Algorithms first: the issuers' keys are checked against them.
  const std::string ap = o.at("algorithms");
  v.algorithms = string_list(o.require("algorithms"), ap, "algorithm");
  if (v.algorithms.empty()) throw ConfigError(ap, "at least one algorithm is needed");
  std::vector<auth::JwsAlgorithm> algs;
  for (std::size_t i = 0; i < v.algorithms.size(); ++i) {
    auto a = auth::parse_jws_algorithm(v.algorithms[i]);
    if (!a) {
      throw ConfigError(child(ap, i), "unsupported algorithm " + quote(v.algorithms[i]) +
                                          "; expected one of HS256..HS512, RS256..RS512, PS256..PS512, "
                                          "ES256..ES512, EdDSA (\"none\" is never accepted)");
    }
    algs.push_back(*a);
  }

  const std::string ip = o.at("issuers");
  const json& issuers = as_array(o.require("issuers"), ip);
  if (issuers.empty()) throw ConfigError(ip, "at least one issuer is needed");
  std::set<std::string> seen;
  std::size_t i = 0;
  for (const json& entry : issuers) {
    std::vector<std::string> allowed = {"issuer", "jwks_file", "jwks", "pem_file", "jwks_uri", "discovery"};
    allowed.insert(allowed.end(), kRemoteKeys.begin(), kRemoteKeys.end());
    Object io(entry, child(ip, i++), allowed);
    auth::JwtIssuer issuer;
    issuer.issuer = name_string(io.require("issuer"), io.at("issuer"), "issuer");
    if (!seen.insert(issuer.issuer).second) throw ConfigError(io.at("issuer"), "duplicate issuer " + quote(issuer.issuer));
    issuer.keys = key_source(io, algs, issuer.issuer);
    v.issuers.push_back(std::move(issuer));
  }

  if (const json* a = o.find("audiences")) v.audiences = string_list(*a, o.at("audiences"), "audience");
  if (const json* r = o.find("required_claims")) {
    v.required_claims = string_list(*r, o.at("required_claims"), "claim name");
  }
  v.leeway = std::chrono::seconds(o.integer("leeway_s", 0, 3600, v.leeway.count()));
  if (const json* t = o.find("typ")) v.typ = name_string(*t, o.at("typ"), "typ");
  v.max_token_bytes = static_cast<std::size_t>(
      o.integer("max_token_bytes", 256, 1 << 20, static_cast<std::int64_t>(v.max_token_bytes)));
  if (const json* c = o.find("cache")) {
    Object co(*c, o.at("cache"), {"enabled", "max_entries", "max_age_s"});
    v.cache.enabled = co.boolean("enabled", v.cache.enabled);
    v.cache.max_entries = static_cast<std::size_t>(
        co.integer("max_entries", 1, 10'000'000, static_cast<std::int64_t>(v.cache.max_entries)));
    v.cache.max_age = std::chrono::seconds(co.integer("max_age_s", 1, 86'400, v.cache.max_age.count()));
  }
  try {
    return std::make_shared<const auth::JwtVerifier>(std::move(v));
  } catch (const std::invalid_argument& e) {
    throw ConfigError(path, e.what());
  }
}

}  // namespace

std::shared_ptr<const auth::TokenVerifier> make_jwt_verifier(const json& options, const std::string& path) {
  Object o(options, path, with({"type"}, kJwtKeys));
  return jwt_verifier(o, path);
}

VerifierMap make_verifiers(const json& section, const std::string& path) {
  using Maker = std::shared_ptr<const auth::TokenVerifier> (*)(const json&, const std::string&);
  static const std::vector<std::pair<std::string, Maker>> kTypes = {
      {"jwt", &make_jwt_verifier},
      {"introspection", &make_introspection_verifier},
      {"api_keys", &make_api_key_verifier},
  };
  VerifierMap out;
  for (const auto& [name, entry] : as_object(section, path).items()) {
    const std::string p = child(path, name);
    if (name.empty()) throw ConfigError(p, "verifier name must not be empty");
    as_object(entry, p);
    const std::string tp = child(p, "type");
    const auto t = entry.find("type");
    if (t == entry.end()) throw ConfigError(tp, "missing \"type\"");
    const std::string& type = as_string(*t, tp);
    std::vector<std::string> known;
    for (const auto& [n, make] : kTypes) {
      known.push_back(n);
      if (n == type) out.emplace(name, make(entry, p));
    }
    if (!out.count(name)) {
      throw ConfigError(tp, "unknown verifier type " + quote(type) + did_you_mean(type, known) + "; known: " +
                                join(known));
    }
  }
  return out;
}

std::shared_ptr<const Middleware> make_authenticate(const json& options, const std::string& path,
                                                    const ConfigContext& context) {
  Object o(options, path,
           with({"verifiers", "credential", "realm", "optional", "fail_open_when_unavailable", "identity",
                 "forward_token"},
                kJwtKeys));
  std::vector<std::shared_ptr<const auth::TokenVerifier>> verifiers;
  if (const json* names = o.find("verifiers")) {
    for (const auto& key : kJwtKeys) {
      if (o.find(key)) {
        throw ConfigError(o.at(key), "not allowed together with \"verifiers\": it belongs in the verifier's definition");
      }
    }
    const std::string vp = o.at("verifiers");
    const std::vector<std::string> list = string_list(*names, vp, "verifier name");
    if (list.empty()) throw ConfigError(vp, "at least one verifier is needed");
    for (std::size_t k = 0; k < list.size(); ++k) {
      const auto it = context.verifiers.find(list[k]);
      if (it == context.verifiers.end()) {
        std::vector<std::string> known;
        for (const auto& entry : context.verifiers) known.push_back(entry.first);
        throw ConfigError(child(vp, k), "unknown verifier " + quote(list[k]) + did_you_mean(list[k], known) +
                                            "; the top-level \"verifiers\" defines " +
                                            (known.empty() ? std::string("none") : join(known)));
      }
      verifiers.push_back(it->second);
    }
  } else {
    if (!o.find("issuers") && !o.find("algorithms")) {
      throw ConfigError(child(path, "verifiers"),
                        "expected \"verifiers\" (names from the top-level \"verifiers\") or an inline JWT verifier "
                        "(\"issuers\" and \"algorithms\")");
    }
    verifiers.push_back(jwt_verifier(o, path));
  }

  AuthenticateOptions opts;
  if (const json* c = o.find("credential")) opts.source = credential(*c, o.at("credential"));
  opts.realm = realm(o);
  opts.optional = o.boolean("optional", false);
  opts.fail_open_when_unavailable = o.boolean("fail_open_when_unavailable", false);
  opts.forward_token = o.boolean("forward_token", true);
  if (const json* id = o.find("identity")) {
    const std::string idp = o.at("identity");
    opts.identity = identity(*id, idp);
    // Identity headers are stripped from every request: one of them must not be the credential,
    // nor may two of them collide.
    std::vector<std::pair<std::string, std::string>> names;  // header -> path
    if (!opts.identity.subject.empty()) names.emplace_back(opts.identity.subject, child(idp, "subject"));
    if (!opts.identity.scopes.empty()) names.emplace_back(opts.identity.scopes, child(idp, "scopes"));
    for (const auto& [claim, header] : opts.identity.claims) names.emplace_back(header, child(child(idp, "claims"), claim));
    for (std::size_t k = 0; k < names.size(); ++k) {
      if (opts.source.kind == CredentialSource::Kind::header && iequals(names[k].first, opts.source.name)) {
        throw ConfigError(names[k].second, quote(names[k].first) + " is the credential header");
      }
      for (std::size_t m = 0; m < k; ++m) {
        if (iequals(names[k].first, names[m].first)) {
          throw ConfigError(names[k].second, "header " + quote(names[k].first) + " is also used by " + names[m].second);
        }
      }
    }
  }

  opts.verifiers = std::move(verifiers);
  try {
    return std::make_shared<const Authenticate>(std::move(opts));
  } catch (const std::invalid_argument& e) {
    throw ConfigError(path, e.what());
  }
}

std::shared_ptr<const Middleware> make_authorize(const json& options, const std::string& path) {
  Object o(options, path, {"scopes", "claims", "any_of", "realm"});
  std::vector<Rule> rules;
  if (const json* s = o.find("scopes")) {
    const std::string sp = o.at("scopes");
    std::vector<std::string> scopes = string_list(*s, sp, "scope");
    for (std::size_t k = 0; k < scopes.size(); ++k) {
      if (!detail::is_scope_token(scopes[k])) throw ConfigError(child(sp, k), "invalid scope " + quote(scopes[k]) + ": no spaces, '\"' or '\\'");
    }
    if (!scopes.empty()) rules.push_back(Rule::require_scopes(std::move(scopes)));
  }
  if (const json* c = o.find("claims")) {
    const std::string cp = o.at("claims");
    std::size_t k = 0;
    for (const json& entry : as_array(*c, cp)) {
      Object co(entry, child(cp, k++), {"claim", "equals", "contains", "in"});
      std::string claim = name_string(co.require("claim"), co.at("claim"), "claim name");
      const std::string which = co.one_of({"equals", "contains", "in"});
      const json& value = *co.find(which);
      const std::string vp = co.at(which);
      if (which == "equals") {
        // Numbers and booleans compare with the claim's JSON form.
        if (!value.is_string() && !value.is_number_integer() && !value.is_boolean()) {
          throw ConfigError(vp, "expected a string, an integer or a boolean, got " + describe(value));
        }
        rules.push_back(Rule::claim_equals(std::move(claim), value.is_string() ? value.get<std::string>() : value.dump()));
      } else if (which == "contains") {
        rules.push_back(Rule::claim_contains(std::move(claim), name_string(value, vp, "value")));
      } else {
        std::vector<std::string> values = string_list(value, vp, "value");
        if (values.empty()) throw ConfigError(vp, "at least one value is needed");
        rules.push_back(Rule::claim_in(std::move(claim), std::move(values)));
      }
    }
  }
  if (rules.empty()) throw ConfigError(path, "needs at least one of \"scopes\" and \"claims\"");
  AuthorizeOptions opts;
  opts.rule = o.boolean("any_of", false) ? Rule::any_of(std::move(rules)) : Rule::all_of(std::move(rules));
  opts.realm = realm(o);
  try {
    return std::make_shared<const Authorize>(std::move(opts));
  } catch (const std::invalid_argument& e) {
    throw ConfigError(path, e.what());
  }
}

}  // namespace gatehouse::detail
