// Options of the top-level "token_minters" section, of the "mint_identity_token" middleware and of
// the route target "jwks" (see config.cpp for the conventions: strict keys, errors at the JSON
// pointer of the offending key). docs/config.md has the same text with an example.
//
//   token_minters        (top level) {name: {alg: "ES256" | "EdDSA" ("ES256"),
//                        key_file: PEM private key (absent: a new key at every start),
//                        issuer (required), audience: string (none), lifetime_s: 1..3600 (60),
//                        copy_claims: [claim names] (["sub", "scope"]), not_before: false,
//                        cache: true}}
//   mint_identity_token  {minter: name (required), header: "x-gatehouse-identity"}
//   route "jwks"         name of a minter: the route answers GET/HEAD with its JWKS

#include "config/token_minters.hpp"
#include "config/json.hpp"

#include <algorithm>
#include <array>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/token_minter.hpp"
#include "gatehouse/middleware/mint_identity_token.hpp"

namespace gatehouse::detail {
namespace {

using nlohmann::json;

using namespace config_json;  // the loaders' shared JSON helpers

std::shared_ptr<const auth::TokenMinter> make_minter(const json& entry, const std::string& path) {
  Object o(entry, path, {"alg", "key_file", "issuer", "audience", "lifetime_s", "copy_claims", "not_before", "cache"});
  auth::TokenMinterOptions m;
  m.algorithm = o.string("alg", m.algorithm);
  if (m.algorithm != "ES256" && m.algorithm != "EdDSA") {
    throw ConfigError(o.at("alg"), "expected \"ES256\" or \"EdDSA\", got " + quote(m.algorithm) +
                                       did_you_mean(m.algorithm, {"ES256", "EdDSA"}));
  }
  if (const json* k = o.find("key_file")) m.key_file = readable_file(*k, o.at("key_file"));
  m.issuer = name_string(o.require("issuer"), o.at("issuer"), "issuer");
  if (const json* a = o.find("audience")) m.audience = name_string(*a, o.at("audience"), "audience");
  m.lifetime = std::chrono::seconds(o.integer("lifetime_s", 1, 3600, m.lifetime.count()));
  if (const json* c = o.find("copy_claims")) {
    static constexpr std::array<std::string_view, 6> kOwn = {"iss", "aud", "iat", "nbf", "exp", "jti"};
    const std::string cp = o.at("copy_claims");
    m.copy_claims.clear();
    std::size_t i = 0;
    for (const json& item : as_array(*c, cp)) {
      const std::string p = child(cp, i++);
      std::string name = name_string(item, p, "claim name");
      if (std::find(kOwn.begin(), kOwn.end(), name) != kOwn.end()) {
        throw ConfigError(p, quote(name) + " is set by the minter itself and cannot be copied");
      }
      if (std::find(m.copy_claims.begin(), m.copy_claims.end(), name) != m.copy_claims.end()) {
        throw ConfigError(p, "duplicate claim " + quote(name));
      }
      m.copy_claims.push_back(std::move(name));
    }
  }
  m.not_before = o.boolean("not_before", m.not_before);
  m.cache = o.boolean("cache", m.cache);
  try {
    return std::make_shared<const auth::TokenMinter>(std::move(m));
  } catch (const std::exception& e) {
    // What is left to refuse is the key (wrong type or curve, not a PEM private key).
    throw ConfigError(o.has("key_file") ? o.at("key_file") : path, e.what());
  }
}

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

MinterMap make_token_minters(const json& section, const std::string& path) {
  MinterMap out;
  for (const auto& [name, entry] : as_object(section, path).items()) {
    const std::string p = child(path, name);
    if (name.empty()) throw ConfigError(p, "token minter name must not be empty");
    if (has_control(name)) throw ConfigError(p, "token minter name must not contain control characters");
    out.emplace(name, make_minter(entry, p));
  }
  return out;
}

std::shared_ptr<const Middleware> make_mint_identity_token(const json& options, const std::string& path,
                                                           const ConfigContext& context) {
  Object o(options, path, {"minter", "header"});
  MintIdentityTokenOptions opts;
  opts.minter = find_minter(o.require("minter"), o.at("minter"), context);
  if (const json* h = o.find("header")) {
    const std::string& name = as_string(*h, o.at("header"));
    if (!is_token(name)) throw ConfigError(o.at("header"), "invalid header name " + quote(name) + ": expected an HTTP token");
    opts.header = name;
  }
  return std::make_shared<const MintIdentityToken>(std::move(opts));
}

Handler make_jwks_handler(const json& value, const std::string& path, const ConfigContext& context) {
  return jwks_handler(find_minter(value, path, context));
}

}  // namespace gatehouse::detail
