// The sections of the configuration file, each parsed in its own file of lib/config/ (loader.cpp
// has the top level and the key list). Errors are ConfigError at the JSON pointer of the key.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "config/json.hpp"
#include "gatehouse/config.hpp"

namespace gatehouse::detail {

/// "listeners" (listeners.cpp), TLS files loaded once to be checked.
std::vector<ListenerOptions> parse_listeners(const config_json::Object& top);

/// "metrics" (metrics.cpp): absent, metrics are on.
MetricsOptions parse_metrics(const config_json::Object& top);

/// "upstreams" (upstreams.cpp).
std::map<std::string, std::shared_ptr<Upstream>> parse_upstreams(const config_json::Object& top,
                                                                 const LoadBalancerRegistry& balancers);

/// "verifiers" (verifier_registry.cpp): name -> {"type": ..., options of that type}, built by the
/// factory `registry` has for the type.
std::map<std::string, std::shared_ptr<const auth::TokenVerifier>, std::less<>> make_verifiers(
    const nlohmann::json& section, const std::string& path, const VerifierRegistry& registry);

/// A middleware array: the top-level "middleware" and a route's (middleware_registry.cpp).
std::vector<std::shared_ptr<const Middleware>> parse_chain(const nlohmann::json& j, const std::string& path,
                                                           const MiddlewareRegistry& registry,
                                                           const ConfigContext& context);

/// "routes" (routes.cpp).
std::vector<Route> parse_routes(const config_json::Object& top, const std::vector<ListenerOptions>& listeners,
                                const std::map<std::string, std::shared_ptr<Upstream>>& upstreams,
                                const MiddlewareRegistry& registry, const ConfigContext& context);

}  // namespace gatehouse::detail
