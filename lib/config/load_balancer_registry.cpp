// LoadBalancerRegistry: load-balancing policies by name for an upstream's "load_balancer" key, the
// built-ins in one table. A built-in policy's factory lives beside its policy (lib/proxy/).
#include <algorithm>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"

namespace gatehouse {

using nlohmann::json;
using namespace detail::config_json;

LoadBalancerRegistry LoadBalancerRegistry::with_builtins() {
  LoadBalancerRegistry r;
  r.add("round_robin", Factory(detail::make_round_robin));
  r.add("least_request", Factory(detail::make_least_request));
  r.add("random", Factory(detail::make_random_choice));
  r.add("consistent_hash", Factory(detail::make_consistent_hash));
  return r;
}

void LoadBalancerRegistry::add(std::string name, Factory factory) {
  for (auto& [n, f] : factories_) {
    if (n == name) {
      f = std::move(factory);
      return;
    }
  }
  factories_.emplace_back(std::move(name), std::move(factory));
}

bool LoadBalancerRegistry::contains(const std::string& name) const {
  return std::any_of(factories_.begin(), factories_.end(), [&](const auto& entry) { return entry.first == name; });
}

std::vector<std::string> LoadBalancerRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [n, f] : factories_) out.push_back(n);
  return out;
}

LoadBalancerFactory LoadBalancerRegistry::create(const std::string& policy, const json& options, const std::string& path,
                                                 const std::string& policy_path) const {
  const auto it =
      std::find_if(factories_.begin(), factories_.end(), [&](const auto& entry) { return entry.first == policy; });
  if (it == factories_.end()) {
    const std::vector<std::string> known = names();
    throw ConfigError(policy_path, "unknown load-balancing policy " + quote(policy) + did_you_mean(policy, known) +
                                       "; known: " + join(known));
  }
  LoadBalancerFactory made;
  try {
    made = it->second(options, path);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError(path, "cannot create load-balancing policy " + quote(policy) + ": " + e.what());
  }
  if (!made) throw ConfigError(path, "the factory of load-balancing policy " + quote(policy) + " returned nothing");
  return made;
}

}  // namespace gatehouse
