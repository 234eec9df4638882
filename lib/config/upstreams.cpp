// The "upstreams" section (see loader.cpp for the whole format):
//
//   upstreams  object: name (non-empty) -> object:
//     endpoints   required, non-empty array of "host:port" or "[ipv6]:port", port 1..65535
//     connect_timeout_ms (2000), try_timeout_ms (30000), total_timeout_ms (60000),
//     max_idle_time_ms (30000), max_connection_age_ms (300000), resolve_interval_ms (30000)
//     connect_retries      integer 0..100, default 1
//     max_idle_per_worker  integer >= 0, default 64
//     load_balancer  optional: a policy name ("round_robin", the default) or
//                    {"policy": name, ...options of that policy} (LoadBalancerRegistry)
//     tls         optional object (its presence enables TLS to the upstream):
//       ca, server_name, client_cert, client_key   strings, default "" (none / system CAs /
//       endpoint host); client_cert and client_key go together

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/reload_reuse.hpp"
#include "config/sections.hpp"
#include "gatehouse/upstream.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

// Why an upstream endpoint is invalid, or nullopt if it is fine.
std::optional<std::string> endpoint_problem(std::string_view ep) {
  if (ep.empty()) return "must not be empty";
  std::string_view host, port;
  if (ep.front() == '[') {
    const auto close = ep.find(']');
    if (close == std::string_view::npos) return "missing \"]\" after the IPv6 address";
    host = ep.substr(1, close - 1);
    if (close + 1 >= ep.size() || ep[close + 1] != ':') return "expected \":port\" after \"]\"";
    port = ep.substr(close + 2);
    if (!is_ipv6(host)) return "invalid IPv6 address " + quote(host);
  } else {
    const auto colon = ep.rfind(':');
    if (colon == std::string_view::npos) return "expected \"host:port\"";
    host = ep.substr(0, colon);
    port = ep.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return "an IPv6 address must be written in brackets, as in \"[::1]:80\"";
    }
    if (host.empty()) return "missing host";
    if (!is_host(host)) return "invalid host " + quote(host);
  }
  bool port_ok = !port.empty() && port.size() <= 5 &&
                 port.find_first_not_of("0123456789") == std::string_view::npos;
  if (port_ok) {
    const unsigned long value = std::stoul(std::string(port));
    port_ok = value >= 1 && value <= 65535;
  }
  if (!port_ok) return "port must be an integer in 1..65535, got " + quote(port);
  return std::nullopt;
}

UpstreamTls parse_upstream_tls(const json& j, const std::string& path) {
  Object o(j, path, {"ca", "server_name", "client_cert", "client_key"});
  UpstreamTls tls;
  if (const json* ca = o.find("ca"); ca && !as_string(*ca, o.at("ca")).empty()) {
    tls.ca_file = readable_file(*ca, o.at("ca"));
  }
  tls.server_name = o.string("server_name", "");
  if (!tls.server_name.empty() && !is_host(tls.server_name)) {
    throw ConfigError(o.at("server_name"), "expected a host name, got " + quote(tls.server_name));
  }
  // "" counts as absent, so that templates can leave the keys in place.
  const std::string cert = o.string("client_cert", "");
  const std::string key = o.string("client_key", "");
  if (cert.empty() != key.empty()) {
    const std::string missing = cert.empty() ? "client_cert" : "client_key";
    const std::string given = cert.empty() ? "client_key" : "client_cert";
    throw ConfigError(o.at(missing), "missing " + quote(missing) + ": " + quote(given) + " and " + quote(missing) +
                                         " go together");
  }
  if (!cert.empty()) {
    tls.client_certificate.cert_file = readable_file(*o.find("client_cert"), o.at("client_cert"));
    tls.client_certificate.key_file = readable_file(*o.find("client_key"), o.at("client_key"));
  }
  return tls;
}

namespace {

LoadBalancerFactory parse_load_balancer(const json& j, const std::string& path, const LoadBalancerRegistry& balancers) {
  if (j.is_string()) {
    const std::string& policy = j.get_ref<const std::string&>();
    return balancers.create(policy, json{{"policy", policy}}, path, path);
  }
  const json& o = as_object(j, path);
  const auto it = o.find("policy");
  if (it == o.end()) throw ConfigError(path, "missing \"policy\" (one of: " + join(balancers.names()) + ")");
  const std::string policy_path = child(path, "policy");
  return balancers.create(as_string(*it, policy_path), j, path, policy_path);
}

std::shared_ptr<Upstream> parse_upstream(const std::string& name, const json& j, const std::string& path,
                                         const LoadBalancerRegistry& balancers) {
  Object o(j, path,
           {"endpoints", "connect_timeout_ms", "try_timeout_ms", "total_timeout_ms", "connect_retries",
            "max_idle_per_worker", "max_idle_time_ms", "max_connection_age_ms", "resolve_interval_ms", "tls",
            "load_balancer"});
  UpstreamOptions opts;
  opts.name = name;
  const std::string ep_path = o.at("endpoints");
  const json& eps = as_array(o.require("endpoints"), ep_path);
  if (eps.empty()) throw ConfigError(ep_path, "at least one endpoint is needed");
  std::size_t i = 0;
  for (const json& e : eps) {
    const std::string p = child(ep_path, i++);
    const std::string& ep = as_string(e, p);
    if (auto problem = endpoint_problem(ep)) throw ConfigError(p, "invalid endpoint " + quote(ep) + ": " + *problem);
    opts.endpoints.push_back(ep);
  }
  opts.connect_timeout = o.duration("connect_timeout_ms", opts.connect_timeout);
  opts.try_timeout = o.duration("try_timeout_ms", opts.try_timeout);
  opts.total_timeout = o.duration("total_timeout_ms", opts.total_timeout);
  opts.connect_retries = static_cast<unsigned>(o.integer("connect_retries", 0, 100, opts.connect_retries));
  opts.max_idle_per_worker = static_cast<std::size_t>(
      o.integer("max_idle_per_worker", 0, int64_max, static_cast<std::int64_t>(opts.max_idle_per_worker)));
  opts.max_idle_time = o.duration("max_idle_time_ms", opts.max_idle_time);
  opts.max_connection_age = o.duration("max_connection_age_ms", opts.max_connection_age);
  opts.resolve_interval = o.duration("resolve_interval_ms", opts.resolve_interval);
  if (const json* t = o.find("tls")) opts.tls = parse_upstream_tls(*t, o.at("tls"));
  if (const json* lb = o.find("load_balancer")) opts.load_balancer = parse_load_balancer(*lb, o.at("load_balancer"), balancers);

  const std::vector<std::string> endpoints = opts.endpoints;
  std::vector<std::pair<std::string, std::string>> tls_files;
  if (opts.tls) {
    const std::string tp = o.at("tls");
    if (!opts.tls->ca_file.empty()) tls_files.emplace_back(opts.tls->ca_file, child(tp, "ca"));
    if (!opts.tls->client_certificate.cert_file.empty()) {
      tls_files.emplace_back(opts.tls->client_certificate.cert_file, child(tp, "client_cert"));
      tls_files.emplace_back(opts.tls->client_certificate.key_file, child(tp, "client_key"));
    }
  }
  const std::string tls_path = opts.tls ? o.at("tls") : path;
  try {
    return Upstream::create(std::move(opts));
  } catch (const std::invalid_argument& e) {
    // Point at the endpoint the message names.
    std::vector<std::pair<std::string, std::string>> names;
    for (std::size_t k = 0; k < endpoints.size(); ++k) names.emplace_back(endpoints[k], child(ep_path, k));
    throw ConfigError(path_mentioned(e.what(), names, ep_path), e.what());
  } catch (const std::exception& e) {
    // Anything else comes from the TLS context (a bad CA bundle or client certificate).
    throw_at_file(e, tls_files, tls_path);
  }
}

}  // namespace

std::map<std::string, std::shared_ptr<Upstream>> parse_upstreams(const Object& top,
                                                                 const LoadBalancerRegistry& balancers,
                                                                 ConfigReuse* reuse) {
  std::map<std::string, std::shared_ptr<Upstream>> out;
  const json* j = top.find("upstreams");
  if (!j) return out;
  const std::string up = top.at("upstreams");
  for (const auto& [name, value] : as_object(*j, up).items()) {
    const std::string p = child(up, name);
    if (name.empty()) throw ConfigError(p, "upstream name must not be empty");
    if (has_control(name)) throw ConfigError(p, "upstream name must not contain control characters");
    out.emplace(name, reuse_or_make<Upstream>(reuse, "upstreams", name, definition_fingerprint(value),
                                              [&] { return parse_upstream(name, value, p, balancers); }));
  }
  return out;
}

}  // namespace gatehouse::detail
