// The config factory of the "least_request" policy: {"policy": "least_request", "choice_count": 2}.
#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "gatehouse/load_balancers.hpp"

namespace gatehouse::detail {

LoadBalancerFactory make_least_request(const nlohmann::json& options, const std::string& path) {
  config_json::Object o(options, path, {"policy", "choice_count"});
  LeastRequestOptions lr;
  lr.choice_count = static_cast<unsigned>(o.integer("choice_count", 1, 16, lr.choice_count));
  return least_request(lr);
}

}  // namespace gatehouse::detail
