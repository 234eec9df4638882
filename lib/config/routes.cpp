// The "routes" section (see loader.cpp for the whole format):
//
//   routes  required, non-empty array of:
//     name            non-empty, unique; default "route<index>"
//     host            "" (any), "example.com" or "*.example.com"; default ""
//     path            starts with '/', default "/"
//     prefix          boolean, default true
//     methods         array of uppercase tokens, default [] (any)
//     rewrite_prefix  "" or a path starting with '/' (upstream routes only)
//     retry           a retry object (retry.cpp) replacing the upstream's (upstream routes only)
//     upstream        name of an upstream          } exactly one of the three
//     respond         {status: 100..599 (200),     }
//                      body: string (""), content_type: string ("text/plain"),
//                      headers: {name: value}}
//     jwks            name of a token minter: GET/HEAD answer its public JWKS
//     middleware      array as for the global chain, run after it
//     listeners       non-empty array of listener names (each must exist, no repeats): the route
//                     is served on those listeners only; absent: on every listener

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/reload_reuse.hpp"
#include "config/sections.hpp"
#include "core/canonical_path.hpp"
#include "gatehouse/exchange.hpp"
#include "gatehouse/flow.hpp"
#include "gatehouse/response.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

namespace {

bool bodyless_status(std::int64_t status) { return status < 200 || status == 204 || status == 304; }

Handler parse_respond(const json& j, const std::string& path) {
  Object o(j, path, {"status", "body", "content_type", "headers"});
  const auto status = o.integer("status", 100, 599, 200);
  const std::string body = o.string("body", "");
  if (!body.empty() && bodyless_status(status)) {
    throw ConfigError(o.at("body"), "a " + std::to_string(status) + " response cannot have a body");
  }
  const std::string content_type = o.string("content_type", "text/plain");
  if (content_type.empty() || !is_header_value(content_type)) {
    throw ConfigError(o.at("content_type"), "expected a media type without CR, LF or NUL, got " + quote(content_type));
  }
  auto response = std::make_shared<Response>();
  response->set_status(static_cast<unsigned>(status));
  if (!body.empty()) response->set_body(body, content_type);
  if (const json* h = o.find("headers")) {
    for (const auto& [name, value] : header_map(*h, o.at("headers"))) {
      const std::string p = child(o.at("headers"), name);
      if (iequals(name, "content-length") || iequals(name, "transfer-encoding")) {
        throw ConfigError(p, quote(name) + " is set by the gateway from the body");
      }
      if (iequals(name, "content-type") && o.has("content_type")) {
        throw ConfigError(p, "conflicts with \"content_type\"; give the media type once");
      }
      response->headers().set(name, value);
    }
  }
  std::shared_ptr<const Response> prototype = std::move(response);
  return [prototype](Exchange&) { return Flow::respond(Response(*prototype)); };
}

}  // namespace

std::vector<Route> parse_routes(const Object& top, const std::vector<ListenerOptions>& listeners,
                                const std::map<std::string, std::shared_ptr<Upstream>>& upstreams,
                                const MiddlewareRegistry& registry, const ConfigContext& context,
                                ConfigReuse* reuse) {
  const std::string rp = top.at("routes");
  const json& arr = as_array(top.require("routes", "at least one route is needed"), rp);
  if (arr.empty()) throw ConfigError(rp, "at least one route is needed");

  std::vector<std::string> upstream_names;
  for (const auto& [name, u] : upstreams) upstream_names.push_back(name);
  std::vector<std::string> listener_names;
  for (const auto& l : listeners)
    if (!l.name.empty()) listener_names.push_back(l.name);

  std::vector<Route> routes;
  std::map<std::string, std::string> names;  // name -> path of the route that has it
  std::size_t i = 0;
  for (const json& r : arr) {
    const std::string path = child(rp, i);
    Object o(r, path,
             {"name", "host", "path", "prefix", "methods", "rewrite_prefix", "upstream", "respond", "jwks",
              "middleware", "listeners", "retry"});
    Route route;

    if (const json* n = o.find("name")) {
      route.name = name_string(*n, o.at("name"), "route name");
    } else {
      route.name = "route" + std::to_string(i);
    }
    if (auto [it, inserted] = names.emplace(route.name, path); !inserted) {
      throw ConfigError(o.has("name") ? o.at("name") : path,
                        "duplicate route name " + quote(route.name) + " (also " + it->second + ")");
    }

    route.host = o.string("host", "");
    if (!route.host.empty()) {
      const std::string_view h = route.host;
      const bool ok = h.starts_with("*.") ? is_dns_name(h.substr(2))
                      : (h.front() == '[' && h.back() == ']') ? is_ipv6(h.substr(1, h.size() - 2))
                                                              : is_host(h);
      if (!ok) {
        throw ConfigError(o.at("host"), "expected \"\" (any host), a host name or \"*.domain\", got " + quote(route.host));
      }
    }

    route.path = o.string("path", "/");
    if (!route.path.starts_with('/')) throw ConfigError(o.at("path"), "must start with \"/\", got " + quote(route.path));
    if (route.path.find_first_of(std::string_view(" ?#\0", 4)) != std::string::npos || has_control(route.path)) {
      throw ConfigError(o.at("path"), "must not contain spaces, control characters, \"?\" or \"#\", got " + quote(route.path));
    }
    // Requests are matched in canonical form (core/canonical_path.hpp): a path written otherwise
    // would match nothing. Escapes the listener may keep are allowed; "//" too (merge_slashes off).
    {
      const PathPolicy lenient{.merge_slashes = false,
                               .encoded_slash = PathEscapeAction::keep_encoded,
                               .backslash = PathEscapeAction::keep_encoded,
                               .encoded_nul = PathEscapeAction::keep_encoded};
      std::string canonical;
      const PathVerdict v = canonicalize_path(route.path, lenient, canonical);
      if (v != PathVerdict::ok || canonical != route.path) {
        throw ConfigError(o.at("path"), "requests are matched on their canonical path, which " + quote(route.path) +
                                            (v == PathVerdict::ok ? " never is; write " + quote(canonical)
                                                                  : " cannot be: " + std::string(path_verdict_reason(v))));
      }
    }
    route.prefix = o.boolean("prefix", true);

    if (const json* m = o.find("methods")) {
      const std::string mp = o.at("methods");
      std::size_t k = 0;
      for (const json& method : as_array(*m, mp)) {
        const std::string p = child(mp, k++);
        const std::string& s = as_string(method, p);
        const bool upper = std::none_of(s.begin(), s.end(), [](char c) { return c >= 'a' && c <= 'z'; });
        if (!is_token(s) || !upper) throw ConfigError(p, "expected an uppercase method name like \"GET\", got " + quote(s));
        if (std::find(route.methods.begin(), route.methods.end(), s) != route.methods.end()) {
          throw ConfigError(p, "duplicate method " + quote(s));
        }
        route.methods.push_back(s);
      }
    }

    if (const json* ls = o.find("listeners")) {
      const std::string lp = o.at("listeners");
      if (as_array(*ls, lp).empty()) {
        throw ConfigError(lp, "at least one listener name is needed (leave \"listeners\" out to serve the route on every listener)");
      }
      std::size_t k = 0;
      for (const json& item : *ls) {
        const std::string p = child(lp, k++);
        std::string name = name_string(item, p, "listener name");
        if (std::find(listener_names.begin(), listener_names.end(), name) == listener_names.end()) {
          throw ConfigError(p, "unknown listener " + quote(name) + did_you_mean(name, listener_names) + "; named listeners: " +
                                   (listener_names.empty() ? std::string("none (give a listener a \"name\")")
                                                           : join(listener_names)));
        }
        if (std::find(route.listeners.begin(), route.listeners.end(), name) != route.listeners.end()) {
          throw ConfigError(p, "duplicate listener " + quote(name));
        }
        route.listeners.push_back(std::move(name));
      }
    }

    const json* upstream = o.find("upstream");
    const json* respond = o.find("respond");
    const json* jwks = o.find("jwks");
    const int targets = (upstream ? 1 : 0) + (respond ? 1 : 0) + (jwks ? 1 : 0);
    if (targets == 0) throw ConfigError(path, "a route needs one of \"upstream\", \"respond\" and \"jwks\"");
    if (targets > 1) {
      throw ConfigError(o.at(jwks ? "jwks" : "respond"),
                        "a route has exactly one of \"upstream\", \"respond\" and \"jwks\"");
    }
    if (jwks) {
      route.origin = detail::make_jwks_handler(*jwks, o.at("jwks"), context);
    } else if (upstream) {
      const std::string& name = as_string(*upstream, o.at("upstream"));
      auto it = upstreams.find(name);
      if (it == upstreams.end()) {
        std::string reason = "unknown upstream " + quote(name) + "; defined: " +
                             (upstream_names.empty() ? std::string("(none)") : join(upstream_names));
        reason += did_you_mean(name, upstream_names);
        throw ConfigError(o.at("upstream"), reason);
      }
      route.origin = it->second;
    } else {
      route.origin = parse_respond(*respond, o.at("respond"));
    }

    if (const json* rw = o.find("rewrite_prefix")) {
      const std::string p = o.at("rewrite_prefix");
      if (!upstream) throw ConfigError(p, "only applies to routes with an \"upstream\"");
      const std::string& s = as_string(*rw, p);
      if (!s.empty() && !s.starts_with('/')) throw ConfigError(p, "must be \"\" or start with \"/\", got " + quote(s));
      if (s.find_first_of(std::string_view(" ?#\0", 4)) != std::string::npos || has_control(s)) {
        throw ConfigError(p, "must not contain spaces, control characters, \"?\" or \"#\", got " + quote(s));
      }
      route.rewrite_prefix = s;
    }

    if (const json* r = o.find("retry")) {
      if (!upstream) throw ConfigError(o.at("retry"), "only applies to routes with an \"upstream\"");
      route.retry_policy = parse_retry(*r, o.at("retry"));
    }

    if (const json* m = o.find("middleware"))
      route.middleware = parse_chain(*m, o.at("middleware"), registry, context, reuse);
    routes.push_back(std::move(route));
    ++i;
  }
  return routes;
}

}  // namespace gatehouse::detail
