// VerifierRegistry: token verifier types by name, the built-ins in one table; and the top-level
// "verifiers" section (name (non-empty) -> {"type": ..., the options of that type}), built through
// it. Each built-in type's factory lives beside its verifier (lib/auth/jwt_verifier_config.cpp,
// introspection_verifier_config.cpp, api_key_verifier_config.cpp).

#include <algorithm>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "config/reload_reuse.hpp"
#include "config/sections.hpp"

namespace gatehouse {

using nlohmann::json;
using namespace detail::config_json;

VerifierRegistry VerifierRegistry::with_builtins() {
  VerifierRegistry r;
  r.add("jwt", Factory(detail::make_jwt_verifier));
  r.add("introspection", Factory(detail::make_introspection_verifier));
  r.add("api_keys", Factory(detail::make_api_key_verifier));
  return r;
}

void VerifierRegistry::add(std::string name, Factory factory) {
  for (auto& [n, f] : factories_) {
    if (n == name) {
      f = std::move(factory);
      return;
    }
  }
  factories_.emplace_back(std::move(name), std::move(factory));
}

bool VerifierRegistry::contains(const std::string& name) const {
  return std::any_of(factories_.begin(), factories_.end(), [&](const auto& entry) { return entry.first == name; });
}

std::vector<std::string> VerifierRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [n, f] : factories_) out.push_back(n);
  return out;
}

std::shared_ptr<const auth::TokenVerifier> VerifierRegistry::create(const std::string& name, const std::string& type,
                                                                    const json& options,
                                                                    const std::string& path) const {
  const auto it =
      std::find_if(factories_.begin(), factories_.end(), [&](const auto& entry) { return entry.first == type; });
  if (it == factories_.end()) {
    const std::vector<std::string> known = names();
    throw ConfigError(child(path, "type"), "unknown verifier type " + quote(type) + did_you_mean(type, known) +
                                               "; known: " + join(known));
  }
  std::shared_ptr<const auth::TokenVerifier> verifier;
  try {
    verifier = it->second(options, path);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError(path, "cannot create verifier " + quote(name) + " of type " + quote(type) + ": " + e.what());
  }
  if (!verifier) throw ConfigError(path, "verifier factory for type " + quote(type) + " returned null");
  return verifier;
}

namespace detail {

std::map<std::string, std::shared_ptr<const auth::TokenVerifier>, std::less<>> make_verifiers(
    const json& section, const std::string& path, const VerifierRegistry& registry, ConfigReuse* reuse) {
  std::map<std::string, std::shared_ptr<const auth::TokenVerifier>, std::less<>> out;
  for (const auto& [name, entry] : as_object(section, path).items()) {
    const std::string p = child(path, name);
    if (name.empty()) throw ConfigError(p, "verifier name must not be empty");
    as_object(entry, p);
    const std::string tp = child(p, "type");
    const auto t = entry.find("type");
    if (t == entry.end()) throw ConfigError(tp, "missing \"type\"");
    const std::string& type = as_string(*t, tp);
    out.emplace(name, reuse_or_make<const auth::TokenVerifier>(reuse, "verifiers", name, definition_fingerprint(entry),
                                                               [&] { return registry.create(name, type, entry, p); }));
  }
  return out;
}

}  // namespace detail
}  // namespace gatehouse
