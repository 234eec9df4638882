// The JSON configuration loader: the top level and its key list (see docs/config.md for the same
// text with a full example). Each section is parsed in its own file of lib/config/ (listeners.cpp,
// upstreams.cpp, verifier_registry.cpp, routes.cpp; the middleware arrays in
// middleware_registry.cpp), and
// each built-in extension's options beside the extension (lib/middleware/*_config.cpp,
// lib/auth/*_config.cpp).
//
// Format: one JSON object. Comments (// and /* */) are allowed; duplicate keys and unknown keys
// are errors everywhere. Numbers are strict integers (no floats, no strings); every "*_ms" key is a
// duration in milliseconds in 1..2147483647. Relative file names are relative to the working
// directory of the process; every named file must exist and be readable at load time, and TLS
// files are loaded once then, so a bad PEM or a key that does not match is reported at its key.
//
//   workers            integer 0..4096, default 0 (= hardware concurrency)
//   drain_timeout_ms   duration, default 10000
//   trusted_proxies    array of CIDR blocks ("10.0.0.0/8", "::1/128", "192.0.2.7"), default []
//   request_id_header  HTTP token, default "x-request-id"
//   metrics            object: {"enabled": true} (metrics.cpp); default: enabled
//   limits             object, every key optional:
//     max_uri_bytes, max_header_bytes, max_header_count   integer >= 1
//     max_body_bytes                                      integer >= 0 (0: no limit)
//     header_timeout_ms, idle_timeout_ms, request_timeout_ms, send_timeout_ms   durations
//   listeners          required, non-empty array of:
//     name      optional, non-empty, unique: what a route's "listeners" refers to
//     address   IP address string, default "127.0.0.1"
//     port      required, integer 0..65535 (0 picks a free port)
//     backlog   integer 1..65535, default 1024
//     max_connections, max_connections_per_client   integers >= 0, default 0 (no limit)
//     tls       optional object:
//       certificates          required, non-empty array of {"cert": file, "key": file}
//       handshake_timeout_ms  duration, default 10000
//       client_ca             file; when set, client certificates are required (mTLS)
//     trace_context  optional object as the top-level one; keys it leaves out come from there
//   admin              optional object (admin.cpp): the admin API's own listener {address
//                      ("127.0.0.1"), port (9901), token_file | token_env, tls (as a listener's)}
//   upstreams          object: name (non-empty) -> object:
//     endpoints   required, non-empty array of "host:port" or "[ipv6]:port", port 1..65535
//     connect_timeout_ms (2000), try_timeout_ms (30000), total_timeout_ms (60000),
//     max_idle_time_ms (30000), max_connection_age_ms (300000), resolve_interval_ms (30000)
//     connect_retries      integer 0..100, default 1
//     max_idle_per_worker  integer >= 0, default 64
//     tls         optional object (its presence enables TLS to the upstream):
//       ca, server_name, client_cert, client_key   strings, default "" (none / system CAs /
//       endpoint host); client_cert and client_key go together
//   verifiers          object: name (non-empty) -> {"type": "jwt" | "introspection" | "api_keys" |
//                      a type the application added to the VerifierRegistry, ...}
//                      (lib/auth/jwt_verifier_config.cpp, introspection_verifier_config.cpp,
//                      api_key_verifier_config.cpp)
//   token_minters      object: name (non-empty) -> internal identity token minter (see
//                      lib/auth/token_minter_config.cpp): {alg, key_file, issuer, audience,
//                      lifetime_s, copy_claims, not_before, cache}
//   middleware         array of {"name": string, "options": object (default {})}: the global chain.
//                      Built-ins: "access_log" {path: "-", queue_capacity: 16384},
//                      "header_rewrite" {request: EDITS, response: EDITS} where EDITS is
//                      {set: {name: value}, append: {name: value}, remove: [name]},
//                      "authenticate", "authorize", "mint_identity_token" {minter: name, header:
//                      "x-gatehouse-identity"} (each in lib/middleware/<name>_config.cpp)
//   trace_context      optional object: W3C trace context (lib/config/trace_context.cpp):
//                      {enabled: true, continue_from: "all" | "trusted" | "never" ("trusted"),
//                       trusted_sources: [CIDR] ([] = trusted_proxies), sample_new: true}
//   redis              object: name (non-empty) -> Redis connection (lib/config/redis.cpp):
//                      {address, username, password | password_env, tls, db, timeout_ms,
//                       connect_timeout_ms, reconnect_min_ms, reconnect_max_ms, stall_timeout_ms,
//                       max_pending, sentinel: {addresses, master_name, username, password}}
//   bans               optional object: automatic bans (lib/config/bans.cpp): {threshold, weights,
//                      half_life_s, ban_s, growth, max_ban_s, forget_after_s, allow, max_clients,
//                      max_bans, redis, redis_prefix, redis_timeout_ms, instance}
//   security_events    optional object: the security-event stream (lib/config/security_events.cpp):
//                      {format, sinks: [{type: file|stdout|syslog, ...}], queue_size,
//                       rate_limit_per_kind: {per_second, burst}, summary_interval_ms}
//   routes             required, non-empty array of:
//     name            non-empty, unique; default "route<index>"
//     host            "" (any), "example.com" or "*.example.com"; default ""
//     path            starts with '/', default "/"
//     prefix          boolean, default true
//     methods         array of uppercase tokens, default [] (any)
//     rewrite_prefix  "" or a path starting with '/' (upstream routes only)
//     upstream        name of an upstream          } exactly one of the three
//     respond         {status: 100..599 (200),     }
//                      body: string (""), content_type: string ("text/plain"),
//                      headers: {name: value}}
//     jwks            name of a token minter: GET/HEAD answer its public JWKS
//     middleware      array as for the global chain, run after it
//     listeners       non-empty array of listener names (each must exist, no repeats): the route
//                     is served on those listeners only; absent: on every listener
//
// Errors are ConfigError(JSON pointer of the offending key, reason); a missing required key is
// reported at the pointer where it should be.

#include "gatehouse/config.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "config/reload_reuse.hpp"
#include "config/sections.hpp"
#include "gatehouse/bans.hpp"
#include "net/cidr.hpp"

namespace gatehouse {

using nlohmann::json;
using namespace detail::config_json;
using detail::parse_chain;
using detail::parse_listeners;
using detail::parse_routes;
using detail::parse_upstreams;

ConfigError::ConfigError(std::string path, std::string reason)
    : std::runtime_error(path.empty() ? reason : path + ": " + reason),
      path_(std::move(path)),
      reason_(std::move(reason)) {}

namespace {

Limits parse_limits(const json& j, const std::string& path) {
  Object o(j, path,
           {"max_uri_bytes", "max_header_bytes", "max_header_count", "max_body_bytes", "header_timeout_ms",
            "idle_timeout_ms", "request_timeout_ms", "send_timeout_ms"});
  Limits l;
  l.max_uri_bytes = static_cast<std::size_t>(o.integer("max_uri_bytes", 1, int64_max, static_cast<std::int64_t>(l.max_uri_bytes)));
  l.max_header_bytes =
      static_cast<std::size_t>(o.integer("max_header_bytes", 1, int64_max, static_cast<std::int64_t>(l.max_header_bytes)));
  l.max_header_count =
      static_cast<std::size_t>(o.integer("max_header_count", 1, int64_max, static_cast<std::int64_t>(l.max_header_count)));
  l.max_body_bytes =
      static_cast<std::uint64_t>(o.integer("max_body_bytes", 0, int64_max, static_cast<std::int64_t>(l.max_body_bytes)));
  l.header_timeout = o.duration("header_timeout_ms", l.header_timeout);
  l.idle_timeout = o.duration("idle_timeout_ms", l.idle_timeout);
  l.request_timeout = o.duration("request_timeout_ms", l.request_timeout);
  l.send_timeout = o.duration("send_timeout_ms", l.send_timeout);
  return l;
}

}  // namespace

GatewayConfig load_config(std::string_view json_text, const MiddlewareRegistry& registry,
                          const VerifierRegistry& verifiers) {
  return load_config(json_text, ConfigRegistries{registry, verifiers, LoadBalancerRegistry::with_builtins()});
}

GatewayConfig load_config(std::string_view json_text, const ConfigRegistries& registries) {
  return detail::load_config_reusing(json_text, registries, nullptr);
}

GatewayConfig load_config(std::string_view json_text, const ConfigRegistries& registries,
                          const GatewayConfig& previous) {
  return detail::load_config_reusing(json_text, registries, previous.reuse.get());
}

GatewayConfig detail::load_config_reusing(std::string_view json_text, const ConfigRegistries& registries,
                                          const ConfigReuse* previous) {
  auto reuse = std::make_shared<ConfigReuse>(previous);
  const MiddlewareRegistry& registry = registries.middleware;
  const VerifierRegistry& verifiers = registries.verifiers;
  const json root = parse_json(json_text);
  if (!root.is_object()) throw ConfigError("", "expected an object at the top level, got " + describe(root));
  Object top(root, "",
             {"workers", "drain_timeout_ms", "trusted_proxies", "request_id_header", "limits", "listeners",
              "upstreams", "verifiers", "token_minters", "middleware", "routes", "metrics", "admin",
              "security_events", "trace_context", "redis", "bans"});

  GatewayConfig config;
  GatewayOptions& opts = config.options;
  opts.workers = static_cast<unsigned>(top.integer("workers", 0, 4096, opts.workers));
  opts.drain_timeout = top.duration("drain_timeout_ms", opts.drain_timeout);
  if (const json* tp = top.find("trusted_proxies")) opts.trusted_proxies = detail::cidr_list(*tp, top.at("trusted_proxies"));
  if (const json* h = top.find("request_id_header")) {
    const std::string& s = as_string(*h, top.at("request_id_header"));
    if (!is_token(s)) throw ConfigError(top.at("request_id_header"), "expected an HTTP header name, got " + quote(s));
    opts.request_id_header = s;
  }
  if (const json* l = top.find("limits")) opts.limits = parse_limits(*l, top.at("limits"));
  opts.metrics = detail::parse_metrics(top);

  if (const json* t = top.find("trace_context"))
    opts.trace_context = detail::parse_trace_context(*t, top.at("trace_context"), opts.trace_context);
  config.listeners = parse_listeners(top, opts.trace_context);
  config.admin = detail::parse_admin(top, config.listeners);
  config.upstreams = parse_upstreams(top, registries.load_balancers, reuse.get());
  if (const json* v = top.find("verifiers")) {
    config.context.verifiers = detail::make_verifiers(*v, top.at("verifiers"), verifiers, reuse.get());
  }
  if (const json* t = top.find("token_minters")) {
    config.context.token_minters = detail::make_token_minters(*t, top.at("token_minters"), reuse.get());
  }
  if (const json* r = top.find("redis")) {
    config.context.redis = detail::parse_redis(*r, top.at("redis"), reuse.get());
    for (const auto& [name, client] : config.context.redis) opts.redis.emplace_back(name, client);
  }
  if (const json* b = top.find("bans")) opts.bans = detail::parse_bans(*b, top.at("bans"), config.context, reuse.get());
  // The ban list scores the security events: it is one of their sinks (with no section, the
  // only one).
  if (const json* se = top.find("security_events")) {
    SecurityEventsOptions events = detail::parse_security_events(*se, top.at("security_events"));
    if (opts.bans) events.sinks.push_back(opts.bans->sink());
    opts.security_events = std::make_shared<SecurityEvents>(std::move(events));
  } else if (opts.bans) {
    opts.security_events = std::make_shared<SecurityEvents>(SecurityEventsOptions{.sinks = {opts.bans->sink()}});
  }
  if (const json* m = top.find("middleware")) {
    config.middleware = parse_chain(*m, top.at("middleware"), registry, config.context, reuse.get());
  }
  config.routes = parse_routes(top, config.listeners, config.upstreams, registry, config.context, reuse.get());
  reuse->forget_previous();
  config.reuse = std::move(reuse);
  return config;
}

GatewayConfig load_config_file(const std::string& file, const MiddlewareRegistry& registry,
                               const VerifierRegistry& verifiers) {
  return load_config_file(file, ConfigRegistries{registry, verifiers, LoadBalancerRegistry::with_builtins()});
}

GatewayConfig load_config_file(const std::string& file, const ConfigRegistries& registries) {
  return load_config(detail::read_config_file(file), registries);
}

GatewayConfig load_config_file(const std::string& file, const ConfigRegistries& registries,
                               const GatewayConfig& previous) {
  return load_config(detail::read_config_file(file), registries, previous);
}

std::string detail::read_config_file(const std::string& file) {
  auto fail = [&file](int err) {
    return ConfigError("", "cannot read " + file + ": " + std::generic_category().message(err));
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) throw fail(errno);
  std::string text;
  char buf[16384];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) text.append(buf, n);
  // A directory opens but fails to read (EISDIR).
  if (std::ferror(f.get())) throw fail(errno);
  f.reset();
  return text;
}

void apply(const GatewayConfig& config, Gateway& gateway) {
  for (const auto& l : config.listeners) gateway.listen(l);
  for (const auto& m : config.middleware) gateway.use(m);
  for (const auto& r : config.routes) gateway.route(r);
  if (config.admin) gateway.admin(*config.admin);
}

}  // namespace gatehouse
