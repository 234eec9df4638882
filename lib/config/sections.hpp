// The sections of the configuration file, each parsed in its own file of lib/config/ (loader.cpp
// has the top level and the key list). Errors are ConfigError at the JSON pointer of the key.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "config/json.hpp"
#include "gatehouse/config.hpp"
#include "gatehouse/redis.hpp"
#include "gatehouse/security_events.hpp"

namespace gatehouse::detail {

class ConfigReuse;  // config/reload_reuse.hpp: with it, entries unchanged since the last load are kept

/// "listeners" (listeners.cpp), TLS files loaded once to be checked. `trace_context`: the top
/// level's, which a listener's own "trace_context" starts from.
std::vector<ListenerOptions> parse_listeners(const config_json::Object& top, const TraceContextOptions& trace_context);

/// A "trace_context" object (trace_context.cpp): `defaults` with the keys it gives.
TraceContextOptions parse_trace_context(const nlohmann::json& j, const std::string& path,
                                        const TraceContextOptions& defaults);
/// An array of CIDR blocks (trace_context.cpp), each checked.
std::vector<std::string> cidr_list(const nlohmann::json& j, const std::string& path);

/// "metrics" (metrics.cpp): absent, metrics are on.
MetricsOptions parse_metrics(const config_json::Object& top);

/// A listener's "tls" object (listeners.cpp); the admin listener's too. TLS files are loaded once.
ServerTls parse_server_tls(const nlohmann::json& j, const std::string& path);

/// "admin" (admin.cpp): the admin listener, absent when the file has none. `listeners` are the
/// public ones, whose address and port it may not share.
std::optional<AdminOptions> parse_admin(const config_json::Object& top, const std::vector<ListenerOptions>& listeners);

/// "upstreams" (upstreams.cpp).
/// An upstream's health_check, outlier_detection, panic_threshold_percent and slow_start_ms
/// (upstream_health.cpp).
UpstreamHealthOptions parse_upstream_health(const config_json::Object& upstream);

std::map<std::string, std::shared_ptr<Upstream>> parse_upstreams(const config_json::Object& top,
                                                                 const LoadBalancerRegistry& balancers,
                                                                 ConfigReuse* reuse = nullptr);

/// A "retry" object of an upstream or a route (retry.cpp): a StandardRetryPolicy.
std::shared_ptr<const RetryPolicy> parse_retry(const nlohmann::json& j, const std::string& path);
/// An upstream's "circuit_breaker" object (retry.cpp).
CircuitBreakerLimits parse_circuit_breaker(const nlohmann::json& j, const std::string& path);

/// "verifiers" (verifier_registry.cpp): name -> {"type": ..., options of that type}, built by the
/// factory `registry` has for the type.
std::map<std::string, std::shared_ptr<const auth::TokenVerifier>, std::less<>> make_verifiers(
    const nlohmann::json& section, const std::string& path, const VerifierRegistry& registry,
    ConfigReuse* reuse = nullptr);

/// A middleware array: the top-level "middleware" and a route's (middleware_registry.cpp).
std::vector<std::shared_ptr<const Middleware>> parse_chain(const nlohmann::json& j, const std::string& path,
                                                           const MiddlewareRegistry& registry,
                                                           const ConfigContext& context,
                                                           ConfigReuse* reuse = nullptr);

/// "routes" (routes.cpp).
std::vector<Route> parse_routes(const config_json::Object& top, const std::vector<ListenerOptions>& listeners,
                                const std::map<std::string, std::shared_ptr<Upstream>>& upstreams,
                                const MiddlewareRegistry& registry, const ConfigContext& context,
                                ConfigReuse* reuse = nullptr);

/// The loader (loader.cpp); `previous`: what the configuration being replaced recorded, whose
/// unchanged entries are kept (null: build everything).
GatewayConfig load_config_reusing(std::string_view json_text, const ConfigRegistries& registries,
                                  const ConfigReuse* previous);
/// The text of a configuration file; a ConfigError with path "" when it cannot be read.
std::string read_config_file(const std::string& file);

/// "redis" (redis.cpp): name -> client; an unchanged entry keeps its client (and connection).
std::map<std::string, std::shared_ptr<RedisClient>, std::less<>> parse_redis(const nlohmann::json& section,
                                                                              const std::string& path,
                                                                              ConfigReuse* reuse = nullptr);
/// One entry of "redis", validated (no connection made).
RedisOptions parse_redis_options(const nlohmann::json& j, const std::string& path, const std::string& name);
/// Why "host:port" / "[v6]:port" is not an endpoint, or nullopt (upstreams.cpp).
std::optional<std::string> endpoint_problem(std::string_view endpoint);
/// An upstream's "tls" object (upstreams.cpp); Redis's too.
UpstreamTls parse_upstream_tls(const nlohmann::json& j, const std::string& path);

/// "bans" (bans.cpp): the ban list, sharing through the Redis connection it names.
std::shared_ptr<BanList> parse_bans(const nlohmann::json& j, const std::string& path, const ConfigContext& context,
                                    ConfigReuse* reuse = nullptr);

/// "security_events" (security_events.cpp): sinks are created (files opened) here.
SecurityEventsOptions parse_security_events(const nlohmann::json& j, const std::string& path);

}  // namespace gatehouse::detail
