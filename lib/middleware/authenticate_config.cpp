// Options of the "authenticate" built-in middleware (see loader.cpp for the conventions: strict
// keys, errors at the JSON pointer of the offending key). docs/config.md has the same text.
//
//   {verifiers: [names from the top-level "verifiers"] or the "jwt" verifier keys inline (not both;
//    jwt_verifier_config.cpp), credential: {header | cookie | query: name} ({"header":
//    "authorization"}), realm: "gatehouse", optional: false, fail_open_when_unavailable: false,
//    forward_token: true, identity: {subject: "x-auth-subject", scopes: "x-auth-scopes",
//    claims: {claim: header}} ("" turns a header off)}

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "gatehouse/middleware/authenticate.hpp"

namespace gatehouse::detail {
namespace {

using nlohmann::json;
using namespace config_json;

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

std::shared_ptr<const Middleware> make_authenticate(const json& options, const std::string& path,
                                                    const ConfigContext& context) {
  Object o(options, path,
           with({"verifiers", "credential", "realm", "optional", "fail_open_when_unavailable", "identity",
                 "forward_token"},
                jwt_verifier_keys()));
  std::vector<std::shared_ptr<const auth::TokenVerifier>> verifiers;
  std::vector<std::string> verifier_names;  // the metrics label of each
  if (const json* names = o.find("verifiers")) {
    for (const auto& key : jwt_verifier_keys()) {
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
      verifier_names.push_back(list[k]);
    }
  } else {
    if (!o.find("issuers") && !o.find("algorithms")) {
      throw ConfigError(child(path, "verifiers"),
                        "expected \"verifiers\" (names from the top-level \"verifiers\") or an inline JWT verifier "
                        "(\"issuers\" and \"algorithms\")");
    }
    verifiers.push_back(make_jwt_verifier_from(o, path));
    verifier_names.emplace_back("jwt");
  }

  AuthenticateOptions opts;
  if (const json* c = o.find("credential")) opts.source = credential(*c, o.at("credential"));
  opts.realm = realm_option(o);
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
  opts.verifier_names = std::move(verifier_names);
  try {
    return std::make_shared<const Authenticate>(std::move(opts));
  } catch (const std::invalid_argument& e) {
    throw ConfigError(path, e.what());
  }
}

}  // namespace gatehouse::detail
