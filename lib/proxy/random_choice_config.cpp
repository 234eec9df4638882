// The config factory of the "random" policy: {"policy": "random"}.
#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "gatehouse/load_balancers.hpp"

namespace gatehouse::detail {

LoadBalancerFactory make_random_choice(const nlohmann::json& options, const std::string& path) {
  config_json::Object o(options, path, {"policy"});  // no options of its own
  return random_choice();
}

}  // namespace gatehouse::detail
