// "authenticate" and "authorize" options (see config.cpp for the conventions: strict keys, errors
// at the JSON pointer of the offending key).
//
//   authenticate  {issuers: [{issuer, one of jwks_file | jwks (inline JWKS object) | pem_file}],
//                  algorithms: ["RS256", ...] (required), audiences: [], leeway_s: 0..3600 (30),
//                  required_claims: [], credential: {header | cookie | query: name}
//                  ({"header": "authorization"}), realm: "gatehouse", optional: false,
//                  fail_open_when_unavailable: false, forward_token: true,
//                  identity: {subject: "x-auth-subject", scopes: "x-auth-scopes",
//                             claims: {claim: header}} ("" turns a header off)}
//   authorize     {scopes: [], claims: [{claim, one of equals | contains | in}], any_of: false,
//                  realm: "gatehouse"}; with any_of, the scopes (all of them) are one alternative.

#include "config_auth.hpp"
#include "config_json.hpp"

#include <unistd.h>

#include <algorithm>
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
#include "gatehouse/config.hpp"
#include "gatehouse/middleware/authenticate.hpp"
#include "gatehouse/middleware/authorize.hpp"

namespace gatehouse::detail {
namespace {

using nlohmann::json;

using namespace config_json;  // the loaders' shared JSON helpers

bool is_control(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }

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
  if (std::any_of(s.begin(), s.end(), [](char c) { return c == '"' || c == '\\' || is_control(c); })) {
    throw ConfigError(o.at("realm"), "must not contain '\"', '\\' or control characters");
  }
  return s;
}

std::shared_ptr<const auth::KeySource> key_source(const Object& o, const std::vector<auth::JwsAlgorithm>& algs) {
  const std::string which = o.one_of({"jwks_file", "jwks", "pem_file"});
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

}  // namespace

std::shared_ptr<const Middleware> make_authenticate(const json& options, const std::string& path) {
  Object o(options, path,
           {"issuers", "algorithms", "audiences", "leeway_s", "required_claims", "credential", "realm", "optional",
            "fail_open_when_unavailable", "identity", "forward_token"});
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
    Object io(entry, child(ip, i++), {"issuer", "jwks_file", "jwks", "pem_file"});
    auth::JwtIssuer issuer;
    issuer.issuer = name_string(io.require("issuer"), io.at("issuer"), "issuer");
    if (!seen.insert(issuer.issuer).second) throw ConfigError(io.at("issuer"), "duplicate issuer " + quote(issuer.issuer));
    issuer.keys = key_source(io, algs);
    v.issuers.push_back(std::move(issuer));
  }

  if (const json* a = o.find("audiences")) v.audiences = string_list(*a, o.at("audiences"), "audience");
  if (const json* r = o.find("required_claims")) {
    v.required_claims = string_list(*r, o.at("required_claims"), "claim name");
  }
  if (const json* l = o.find("leeway_s")) {
    if (!l->is_number_integer() || l->get<std::int64_t>() < 0 || l->get<std::int64_t>() > 3600) {
      throw ConfigError(o.at("leeway_s"), "expected an integer in 0..3600, got " + describe(*l));
    }
    v.leeway = std::chrono::seconds(l->get<std::int64_t>());
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

  try {
    opts.verifiers.push_back(std::make_shared<const auth::JwtVerifier>(std::move(v)));
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
      const bool ok = std::all_of(scopes[k].begin(), scopes[k].end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u == 0x21 || (u >= 0x23 && u <= 0x5b) || (u >= 0x5d && u <= 0x7e);
      });
      if (!ok) throw ConfigError(child(sp, k), "invalid scope " + quote(scopes[k]) + ": no spaces, '\"' or '\\'");
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
