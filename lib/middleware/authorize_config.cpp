// Options of the "authorize" built-in middleware (see loader.cpp for the conventions: strict keys,
// errors at the JSON pointer of the offending key). docs/config.md has the same text.
//
//   {scopes: [], claims: [{claim, one of equals | contains | in}], spiffe_ids: [], principals: [],
//    any_of: false, realm: "gatehouse"}; with any_of, the scopes (all of them) are one alternative,
//    and so are the spiffe_ids (any one of them) and the principals (any one of them).

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "gatehouse/middleware/authorize.hpp"
#include "util/text.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

std::shared_ptr<const Middleware> make_authorize(const json& options, const std::string& path,
                                                 const ConfigContext&) {
  Object o(options, path, {"scopes", "claims", "spiffe_ids", "principals", "any_of", "realm"});
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
  // Certificate identities (downstream mTLS): any one of the listed ones.
  if (const json* s = o.find("spiffe_ids")) {
    const std::string sp = o.at("spiffe_ids");
    std::vector<std::string> ids = string_list(*s, sp, "SPIFFE ID");
    if (ids.empty()) throw ConfigError(sp, "at least one SPIFFE ID is needed");
    for (std::size_t k = 0; k < ids.size(); ++k) {
      std::string_view id = ids[k];
      if (id.ends_with("/*")) id.remove_suffix(2);
      if (!is_spiffe_id(id))
        throw ConfigError(child(sp, k), "invalid SPIFFE ID " + quote(ids[k]) +
                                            ": expected spiffe://trust-domain/path, optionally ending in /*");
    }
    rules.push_back(Rule::spiffe_id_in(std::move(ids)));
  }
  if (const json* p = o.find("principals")) {
    const std::string pp = o.at("principals");
    std::vector<std::string> principals = string_list(*p, pp, "principal");
    if (principals.empty()) throw ConfigError(pp, "at least one principal is needed");
    for (std::size_t k = 0; k < principals.size(); ++k) {
      if (!is_principal(principals[k]))
        throw ConfigError(child(pp, k), "invalid principal " + quote(principals[k]) +
                                            ": expected spiffe://..., dns:NAME, uri:URI, email:ADDRESS, ip:ADDRESS "
                                            "or subject:DN");
    }
    rules.push_back(Rule::principal_in(std::move(principals)));
  }
  if (rules.empty())
    throw ConfigError(path, "needs at least one of \"scopes\", \"claims\", \"spiffe_ids\" and \"principals\"");
  AuthorizeOptions opts;
  opts.rule = o.boolean("any_of", false) ? Rule::any_of(std::move(rules)) : Rule::all_of(std::move(rules));
  opts.realm = realm_option(o);
  try {
    return std::make_shared<const Authorize>(std::move(opts));
  } catch (const std::invalid_argument& e) {
    throw ConfigError(path, e.what());
  }
}

}  // namespace gatehouse::detail
