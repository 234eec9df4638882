// The config factories of the built-in extensions. Each is defined beside what it builds (the
// factory of lib/middleware/x.cpp in lib/middleware/x_config.cpp, of lib/auth/y.cpp in
// lib/auth/y_config.cpp) and registered by name in one table: MiddlewareRegistry::with_builtins()
// (middleware_registry.cpp) or VerifierRegistry::with_builtins() (verifier_registry.cpp). A factory
// validates its options object at JSON path `path` and throws ConfigError at the offending key.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "config/json.hpp"
#include "gatehouse/config.hpp"
#include "gatehouse/middleware.hpp"
#include "gatehouse/middleware/ip_filter.hpp"
#include "gatehouse/route.hpp"

namespace gatehouse::detail {

// Middleware.
std::shared_ptr<const Middleware> make_access_log(const nlohmann::json& options, const std::string& path,
                                                  const ConfigContext& context);
std::shared_ptr<const Middleware> make_header_rewrite(const nlohmann::json& options, const std::string& path,
                                                      const ConfigContext& context);
std::shared_ptr<const Middleware> make_authenticate(const nlohmann::json& options, const std::string& path,
                                                    const ConfigContext& context);
std::shared_ptr<const Middleware> make_authorize(const nlohmann::json& options, const std::string& path,
                                                 const ConfigContext& context);
std::shared_ptr<const Middleware> make_rate_limit(const nlohmann::json& options, const std::string& path,
                                                    const ConfigContext& context);
std::shared_ptr<const Middleware> make_waf(const nlohmann::json& options, const std::string& path,
                                          const ConfigContext& context);
std::shared_ptr<const Middleware> make_mint_identity_token(const nlohmann::json& options, const std::string& path,
                                                           const ConfigContext& context);
std::shared_ptr<const Middleware> make_ip_filter(const nlohmann::json& options, const std::string& path,
                                                 const ConfigContext& context);
std::shared_ptr<const Middleware> make_client_identity_headers(const nlohmann::json& options, const std::string& path,
                                                               const ConfigContext& context);
std::shared_ptr<const Middleware> make_response_hardening(const nlohmann::json& options, const std::string& path,
                                                          const ConfigContext& context);
// A listener's "ip_filter" takes the same keys but "address" (ip_filter_config.cpp).
std::shared_ptr<const IpFilter> make_ip_filter_from(const nlohmann::json& options, const std::string& path,
                                                    bool listener);

// Route targets: a route's "jwks" names a token minter whose JWKS it serves
// (mint_identity_token_config.cpp).
Handler make_jwks_handler(const nlohmann::json& value, const std::string& path, const ConfigContext& context);

// Verifier types of the "verifiers" section; `options` is the whole entry, "type" included.
std::shared_ptr<const auth::TokenVerifier> make_jwt_verifier(const nlohmann::json& options, const std::string& path);
std::shared_ptr<const auth::TokenVerifier> make_introspection_verifier(const nlohmann::json& options,
                                                                       const std::string& path);
std::shared_ptr<const auth::TokenVerifier> make_api_key_verifier(const nlohmann::json& options,
                                                                 const std::string& path);

// Load-balancing policies of an upstream's "load_balancer"; `options` is {"policy": name, ...}
// (lib/proxy/<policy>_config.cpp).
LoadBalancerFactory make_round_robin(const nlohmann::json& options, const std::string& path);
LoadBalancerFactory make_least_request(const nlohmann::json& options, const std::string& path);
LoadBalancerFactory make_random_choice(const nlohmann::json& options, const std::string& path);
LoadBalancerFactory make_consistent_hash(const nlohmann::json& options, const std::string& path);

// An inline JWT verifier inside "authenticate" takes the same keys as the "jwt" type
// (jwt_verifier_config.cpp).
const std::vector<std::string>& jwt_verifier_keys();
std::shared_ptr<const auth::TokenVerifier> make_jwt_verifier_from(const config_json::Object& o,
                                                                  const std::string& path);

// The "token_minters" section: name -> minter (token_minter_config.cpp).
class ConfigReuse;
std::map<std::string, std::shared_ptr<const auth::TokenMinter>, std::less<>> make_token_minters(
    const nlohmann::json& section, const std::string& path, ConfigReuse* reuse = nullptr);

}  // namespace gatehouse::detail
