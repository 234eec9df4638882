// MiddlewareRegistry: middleware by name, the built-ins in one table; and the middleware arrays of
// the configuration ({"name": ..., "options": {...}}), built through it.

#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/reload_reuse.hpp"
#include "config/sections.hpp"

namespace gatehouse {

using nlohmann::json;
using namespace detail::config_json;

// The built-ins; each factory is defined beside its middleware, in lib/middleware/<name>_config.cpp.
MiddlewareRegistry MiddlewareRegistry::with_builtins() {
  MiddlewareRegistry r;
  r.add("access_log", Factory(detail::make_access_log));
  r.add("header_rewrite", Factory(detail::make_header_rewrite));
  r.add("authenticate", Factory(detail::make_authenticate));
  r.add("authorize", Factory(detail::make_authorize));
  r.add("rate_limit", Factory(detail::make_rate_limit));
  r.add("mint_identity_token", Factory(detail::make_mint_identity_token));
  r.add("ip_filter", Factory(detail::make_ip_filter));
  r.add("client_identity_headers", Factory(detail::make_client_identity_headers));
  r.add("response_hardening", Factory(detail::make_response_hardening));
  r.add("waf", Factory(detail::make_waf));
  return r;
}

void MiddlewareRegistry::add(std::string name, Factory factory) { factories_[std::move(name)] = std::move(factory); }

void MiddlewareRegistry::add(std::string name, SimpleFactory factory) {
  add(std::move(name), Factory([f = std::move(factory)](const json& options, const std::string& path,
                                                        const ConfigContext&) { return f(options, path); }));
}

bool MiddlewareRegistry::contains(const std::string& name) const { return factories_.count(name) != 0; }

std::shared_ptr<const Middleware> MiddlewareRegistry::create(const std::string& name, const json& options,
                                                             const std::string& path,
                                                             const ConfigContext& context) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    std::vector<std::string> known;
    for (const auto& [n, f] : factories_) known.push_back(n);
    throw ConfigError(path, "unknown middleware " + quote(name) + did_you_mean(name, known) + "; known: " +
                                (known.empty() ? std::string("(none)") : join(known)));
  }
  return it->second(options, path, context);
}

namespace detail {

std::vector<std::shared_ptr<const Middleware>> parse_chain(const json& j, const std::string& path,
                                                           const MiddlewareRegistry& registry,
                                                           const ConfigContext& context, ConfigReuse* reuse) {
  std::vector<std::shared_ptr<const Middleware>> chain;
  std::size_t i = 0;
  for (const json& entry : as_array(j, path)) {
    Object o(entry, child(path, i++), {"name", "options"});
    const std::string name = as_string(o.require("name"), o.at("name"));
    const std::string options_path = o.at("options");
    static const json empty_options = json::object();
    const json* options = o.find("options");
    if (options) {
      as_object(*options, options_path);
    } else {
      options = &empty_options;
    }
    // create() reports unknown names (with the known ones) at the path it is given.
    const std::string& at = registry.contains(name) ? options_path : o.at("name");
    try {
      chain.push_back(reuse_or_make<const Middleware>(reuse, "middleware", name, middleware_fingerprint(entry, context),
                                                      [&] { return registry.create(name, *options, at, context); }));
    } catch (const ConfigError&) {
      throw;
    } catch (const std::exception& e) {
      throw ConfigError(options_path, "cannot create middleware " + quote(name) + ": " + e.what());
    }
    if (!chain.back()) throw ConfigError(options_path, "middleware factory for " + quote(name) + " returned null");
  }
  return chain;
}

}  // namespace detail
}  // namespace gatehouse
