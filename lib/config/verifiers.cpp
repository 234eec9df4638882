// The top-level "verifiers" section: name (non-empty) -> {"type": ..., the options of that type}.
// Each built-in type's factory lives beside its verifier (lib/auth/jwt_verifier_config.cpp,
// introspection_verifier_config.cpp, api_key_verifier_config.cpp).

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "config/sections.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

std::map<std::string, std::shared_ptr<const auth::TokenVerifier>, std::less<>> make_verifiers(const json& section,
                                                                                          const std::string& path) {
  using Maker = std::shared_ptr<const auth::TokenVerifier> (*)(const json&, const std::string&);
  static const std::vector<std::pair<std::string, Maker>> kTypes = {
      {"jwt", &make_jwt_verifier},
      {"introspection", &make_introspection_verifier},
      {"api_keys", &make_api_key_verifier},
  };
  std::map<std::string, std::shared_ptr<const auth::TokenVerifier>, std::less<>> out;
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

}  // namespace gatehouse::detail
