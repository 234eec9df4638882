// Options of the top-level "token_minters" section (see loader.cpp for the conventions: strict
// keys, errors at the JSON pointer of the offending key). docs/config.md has the same text with an
// example.
//
//   token_minters  {name: {alg: "ES256" | "EdDSA" ("ES256"),
//                  key_file: PEM private key (absent: a new key at every start),
//                  issuer (required), audience: string (none), lifetime_s: 1..3600 (60),
//                  copy_claims: [claim names] (["sub", "scope"]), not_before: false, cache: true}}

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "config/reload_reuse.hpp"
#include "gatehouse/auth/token_minter.hpp"

namespace gatehouse::detail {
namespace {

using nlohmann::json;
using namespace config_json;

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

}  // namespace

std::map<std::string, std::shared_ptr<const auth::TokenMinter>, std::less<>> make_token_minters(
    const json& section, const std::string& path, ConfigReuse* reuse) {
  std::map<std::string, std::shared_ptr<const auth::TokenMinter>, std::less<>> out;
  for (const auto& [name, entry] : as_object(section, path).items()) {
    const std::string p = child(path, name);
    if (name.empty()) throw ConfigError(p, "token minter name must not be empty");
    if (has_control(name)) throw ConfigError(p, "token minter name must not contain control characters");
    out.emplace(name, reuse_or_make<const auth::TokenMinter>(reuse, "token_minters", name, definition_fingerprint(entry),
                                                             [&] { return make_minter(entry, p); }));
  }
  return out;
}

}  // namespace gatehouse::detail
