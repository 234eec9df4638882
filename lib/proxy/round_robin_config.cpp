// The config factory of the "round_robin" load-balancing policy: {"policy": "round_robin"}.
#include <nlohmann/json.hpp>

#include "config/builtins.hpp"

namespace gatehouse::detail {

LoadBalancerFactory make_round_robin(const nlohmann::json& options, const std::string& path) {
  config_json::Object o(options, path, {"policy"});  // no options of its own
  return round_robin();
}

}  // namespace gatehouse::detail
