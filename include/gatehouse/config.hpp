// The JSON configuration of the `gatehouse` program, mapped onto the same Gateway calls.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "gatehouse/gateway.hpp"
#include "gatehouse/load_balancer.hpp"

namespace gatehouse {

class RedisClient;
namespace auth {
class TokenVerifier;
class TokenMinter;
}
namespace detail {
class ConfigReuse;
}

/// A configuration problem: `path` is the JSON path of the offending key ("/routes/2/upstream"),
/// `reason` says what is wrong. what() is "<path>: <reason>".
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string path, std::string reason);
  const std::string& path() const noexcept { return path_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string path_, reason_;
};

/// Named objects from the configuration's top-level sections, built before any middleware so that
/// middleware factories can refer to them (and several routes can share one).
struct ConfigContext {
  /// The "verifiers" section: name -> verifier (JWT, introspection, API keys).
  std::map<std::string, std::shared_ptr<const auth::TokenVerifier>, std::less<>> verifiers{};
  /// The "token_minters" section: name -> minter of internal identity tokens for upstreams.
  std::map<std::string, std::shared_ptr<const auth::TokenMinter>, std::less<>> token_minters{};
  /// The "redis" section: name -> client (connected in the background; shared by everything that
  /// names it: rate limits, bans).
  std::map<std::string, std::shared_ptr<RedisClient>, std::less<>> redis{};
};

/// Middleware by name: a factory receives the "options" object and its JSON path, validates it
/// (throwing ConfigError) and builds the middleware.
class MiddlewareRegistry {
 public:
  using Factory = std::function<std::shared_ptr<const Middleware>(
      const nlohmann::json& options, const std::string& path, const ConfigContext& context)>;
  using SimpleFactory = std::function<std::shared_ptr<const Middleware>(const nlohmann::json& options,
                                                                        const std::string& path)>;
  /// A registry holding the built-ins: "access_log", "header_rewrite", "authenticate", "authorize", "rate_limit",
  /// "mint_identity_token", "ip_filter", "client_identity_headers", "response_hardening", "waf".
  static MiddlewareRegistry with_builtins();
  void add(std::string name, Factory factory);
  /// For factories that need nothing from the context.
  void add(std::string name, SimpleFactory factory);
  bool contains(const std::string& name) const;
  std::shared_ptr<const Middleware> create(const std::string& name, const nlohmann::json& options,
                                           const std::string& path, const ConfigContext& context = {}) const;

 private:
  std::map<std::string, Factory, std::less<>> factories_;
};

/// Token verifier types by name, for the top-level "verifiers" section: the entry's "type" picks the
/// factory, which receives the whole entry ("type" included) and its JSON path, validates it
/// (throwing ConfigError at the offending key) and builds the verifier. An "authenticate" entry
/// then names the verifier like a built-in one.
class VerifierRegistry {
 public:
  using Factory = std::function<std::shared_ptr<const auth::TokenVerifier>(const nlohmann::json& options,
                                                                           const std::string& path)>;
  /// A registry holding the built-ins: "jwt", "introspection", "api_keys".
  static VerifierRegistry with_builtins();
  /// Adds the type `name`, or replaces the factory of a type already there.
  void add(std::string name, Factory factory);
  bool contains(const std::string& name) const;
  /// The types, in the order they were first added (the built-ins first).
  std::vector<std::string> names() const;
  /// Builds a verifier of `type` from `options` at `path`. Throws ConfigError: an unknown type at
  /// "<path>/type" (naming the known ones), the factory's own ConfigError as it is, any other
  /// exception or a null result at `path`. `name` is the verifier's name, for messages.
  std::shared_ptr<const auth::TokenVerifier> create(const std::string& name, const std::string& type,
                                                    const nlohmann::json& options, const std::string& path) const;

 private:
  std::vector<std::pair<std::string, Factory>> factories_;  // in order: messages list them so
};

/// Load-balancing policies by name, for an upstream's "load_balancer": either the policy's name
/// ("round_robin") or an object {"policy": name, ...options of that policy}. The factory receives
/// that object (the name alone becomes {"policy": name}) and its JSON path, validates it (throwing
/// ConfigError at the offending key) and returns the factory that makes one LoadBalancer per
/// worker.
class LoadBalancerRegistry {
 public:
  using Factory = std::function<LoadBalancerFactory(const nlohmann::json& options, const std::string& path)>;
  /// A registry holding the built-ins: "round_robin", "least_request", "random", "consistent_hash".
  static LoadBalancerRegistry with_builtins();
  /// Adds the policy `name`, or replaces the factory of one already there.
  void add(std::string name, Factory factory);
  bool contains(const std::string& name) const;
  /// The policies, in the order they were first added (the built-ins first).
  std::vector<std::string> names() const;
  /// Builds the policy named `policy`. Throws ConfigError: an unknown policy at `policy_path`
  /// (naming the known ones), the factory's own ConfigError as it is, any other exception or an
  /// empty result at `path`.
  LoadBalancerFactory create(const std::string& policy, const nlohmann::json& options, const std::string& path,
                             const std::string& policy_path) const;

 private:
  std::vector<std::pair<std::string, Factory>> factories_;
};

/// Every registry the configuration file can name things from. Each starts with the built-ins;
/// an application adds its own middleware, verifier types and load-balancing policies.
struct ConfigRegistries {
  MiddlewareRegistry middleware = MiddlewareRegistry::with_builtins();
  VerifierRegistry verifiers = VerifierRegistry::with_builtins();
  LoadBalancerRegistry load_balancers = LoadBalancerRegistry::with_builtins();
};

/// A validated configuration, ready to build a Gateway from.
struct GatewayConfig {
  GatewayOptions options{};
  std::vector<ListenerOptions> listeners{};
  std::map<std::string, std::shared_ptr<Upstream>> upstreams{};
  ConfigContext context{};
  std::vector<std::shared_ptr<const Middleware>> middleware{};  ///< global chain
  std::vector<Route> routes{};
  /// What each upstream, verifier, token minter and middleware was built from, so that loading
  /// with this configuration as `previous` keeps the objects whose definition is unchanged.
  std::shared_ptr<const detail::ConfigReuse> reuse{};
  /// The "admin" section: the admin API's listener, absent when the file has none. A program adds
  /// the hooks (metrics, running_config, reload, drain) before apply().
  std::optional<AdminOptions> admin{};
};

/// Parses and validates; throws ConfigError with the JSON path and reason of the first problem.
/// `registries` name what the file may use: middleware, verifier types, load-balancing policies.
GatewayConfig load_config(std::string_view json_text, const ConfigRegistries& registries);
/// The same, with the built-in load-balancing policies.
GatewayConfig load_config(std::string_view json_text,
                          const MiddlewareRegistry& registry = MiddlewareRegistry::with_builtins(),
                          const VerifierRegistry& verifiers = VerifierRegistry::with_builtins());
/// Reads the file, then as load_config. A missing or unreadable file is a ConfigError with path "".
GatewayConfig load_config_file(const std::string& file, const ConfigRegistries& registries);
GatewayConfig load_config_file(const std::string& file,
                               const MiddlewareRegistry& registry = MiddlewareRegistry::with_builtins(),
                               const VerifierRegistry& verifiers = VerifierRegistry::with_builtins());
/// For a reload: as load_config / load_config_file, but an upstream, verifier, token minter or
/// middleware whose definition is the same as in `previous` is taken from it instead of being built
/// again, so that it keeps its connection pools, keys, caches and open files (no refetch). Same
/// definition: the same JSON, and for the first three the same content of every file it names
/// (a rotated key file or CA bundle is a change); a middleware also counts as changed when a
/// verifier or minter it names was rebuilt. Everything else (listeners and their TLS files,
/// routes) is built anew.
GatewayConfig load_config(std::string_view json_text, const ConfigRegistries& registries,
                          const GatewayConfig& previous);
GatewayConfig load_config_file(const std::string& file, const ConfigRegistries& registries,
                               const GatewayConfig& previous);
/// Registers listeners, middleware, routes and the admin API of `config` on `gateway`.
void apply(const GatewayConfig& config, Gateway& gateway);

}  // namespace gatehouse
