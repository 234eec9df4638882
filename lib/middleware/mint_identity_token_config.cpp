// Options of the "mint_identity_token" built-in middleware and of the route target "jwks" (see
// loader.cpp for the conventions: strict keys, errors at the JSON pointer of the offending key).
// docs/config.md has the same text with an example.
//
//   mint_identity_token  {minter: name (required), header: "x-gatehouse-identity"}
//   route "jwks"         name of a minter: the route answers GET/HEAD with its JWKS
//
// Both name a minter of the top-level "token_minters" (lib/auth/token_minter_config.cpp).

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "gatehouse/middleware/mint_identity_token.hpp"

namespace gatehouse::detail {
namespace {

using nlohmann::json;
using namespace config_json;

std::shared_ptr<const auth::TokenMinter> find_minter(const json& value, const std::string& path,
                                                     const ConfigContext& context) {
  const std::string& name = as_string(value, path);
  const auto it = context.token_minters.find(name);
  if (it != context.token_minters.end()) return it->second;
  std::vector<std::string> known;
  for (const auto& entry : context.token_minters) known.push_back(entry.first);
  throw ConfigError(path, "unknown token minter " + quote(name) + did_you_mean(name, known) +
                              "; the top-level \"token_minters\" defines " +
                              (known.empty() ? std::string("none") : join(known)));
}

}  // namespace

std::shared_ptr<const Middleware> make_mint_identity_token(const json& options, const std::string& path,
                                                           const ConfigContext& context) {
  Object o(options, path, {"minter", "header"});
  MintIdentityTokenOptions opts;
  opts.minter = find_minter(o.require("minter"), o.at("minter"), context);
  if (const json* h = o.find("header")) opts.header = header_name(*h, o.at("header"));
  return std::make_shared<const MintIdentityToken>(std::move(opts));
}

Handler make_jwks_handler(const json& value, const std::string& path, const ConfigContext& context) {
  return jwks_handler(find_minter(value, path, context));
}

}  // namespace gatehouse::detail
