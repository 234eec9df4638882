// Options of the "rate_limit" built-in middleware (docs/config.md has the same text):
//
//   {limits: [{name, requests, period_s: 1, burst: requests, key: ["client_address", "route",
//              "subject", "api_key", {"header": h}, {"claim": c}], shadow: false}],
//    ipv4_prefix: 32, ipv6_prefix: 64, max_keys: 100000, headers: "denied" | "all" | "none",
//    x_ratelimit_headers: false,
//    shared: {redis (a connection of the top-level "redis" section), key_prefix: "gatehouse:rl:",
//             timeout_ms: 5, on_failure: "local" | "open" | "closed", deny_cache_keys: 65536}}

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "gatehouse/middleware/rate_limit.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

namespace {

RateLimitKeyPart key_part(const json& j, const std::string& path) {
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (s == "client_address") return RateLimitKeyPart::client_address();
    if (s == "route") return RateLimitKeyPart::route();
    if (s == "subject") return RateLimitKeyPart::subject();
    if (s == "api_key") return RateLimitKeyPart::api_key();
    const std::vector<std::string> names = {"client_address", "route", "subject", "api_key"};
    throw ConfigError(path, "unknown key part " + quote(s) + did_you_mean(s, names) +
                                "; use one of client_address, route, subject, api_key, {\"header\": name}, "
                                "{\"claim\": name}");
  }
  Object o(j, path, {"header", "claim"});
  const std::string which = o.one_of({"header", "claim"});
  if (which == "header") return RateLimitKeyPart::header(to_lower_ascii(header_name(*o.find("header"), o.at("header"))));
  return RateLimitKeyPart::claim(name_string(*o.find("claim"), o.at("claim"), "claim name"));
}

RateLimit limit(const json& j, const std::string& path) {
  Object o(j, path, {"name", "requests", "period_s", "burst", "key", "shadow"});
  RateLimit l;
  l.name = name_string(o.require("name"), o.at("name"), "limit name");
  l.requests = static_cast<std::uint64_t>(as_integer(o.require("requests"), o.at("requests"), 1, 1'000'000'000));
  l.period = std::chrono::seconds(o.integer("period_s", 1, 366 * 24 * 3600, 1));
  l.burst = static_cast<std::uint64_t>(o.integer("burst", 1, 1'000'000'000, 0));
  if (const json* k = o.find("key")) {
    const std::string kp = o.at("key");
    std::size_t i = 0;
    for (const json& part : as_array(*k, kp)) l.key.push_back(key_part(part, child(kp, i++)));
  }
  l.shadow = o.boolean("shadow", false);
  return l;
}

RateLimitSharedOptions shared_store(const json& j, const std::string& path, const ConfigContext& context) {
  Object o(j, path, {"redis", "key_prefix", "timeout_ms", "on_failure", "deny_cache_keys"});
  RateLimitSharedOptions s;
  const std::string name = name_string(o.require("redis"), o.at("redis"), "Redis connection name");
  auto it = context.redis.find(name);
  if (it == context.redis.end()) {
    std::vector<std::string> known;
    for (const auto& [n, c] : context.redis) known.push_back(n);
    throw ConfigError(o.at("redis"), "no Redis connection named " + quote(name) + " in the \"redis\" section" +
                                         did_you_mean(name, known));
  }
  s.redis = it->second;
  s.key_prefix = o.string("key_prefix", s.key_prefix);
  if (s.key_prefix.find_first_of("{}") != std::string::npos || has_control(s.key_prefix)) {
    throw ConfigError(o.at("key_prefix"), "must not contain '{', '}' or control characters");
  }
  s.timeout = std::chrono::milliseconds(o.integer("timeout_ms", 1, 60'000, 5));
  const std::string mode = o.string("on_failure", "local");
  if (mode == "local") {
    s.on_failure = RateLimitFailureMode::local;
  } else if (mode == "open") {
    s.on_failure = RateLimitFailureMode::open;
  } else if (mode == "closed") {
    s.on_failure = RateLimitFailureMode::closed;
  } else {
    throw ConfigError(o.at("on_failure"), "expected \"local\", \"open\" or \"closed\", got " + quote(mode));
  }
  s.deny_cache_keys = static_cast<std::size_t>(o.integer("deny_cache_keys", 64, std::int64_t{1} << 26, 65'536));
  return s;
}

}  // namespace

std::shared_ptr<const Middleware> make_rate_limit(const json& options, const std::string& path,
                                                  const ConfigContext& context) {
  Object o(options, path,
           {"limits", "ipv4_prefix", "ipv6_prefix", "max_keys", "headers", "x_ratelimit_headers", "shared"});
  RateLimitOptions opts;
  const std::string lp = o.at("limits");
  std::size_t i = 0;
  for (const json& l : as_array(o.require("limits"), lp)) opts.limits.push_back(limit(l, child(lp, i++)));
  if (opts.limits.empty()) throw ConfigError(lp, "at least one limit is needed");
  for (std::size_t a = 0; a < opts.limits.size(); ++a) {
    for (std::size_t b = 0; b < a; ++b) {
      if (opts.limits[a].name == opts.limits[b].name) {
        throw ConfigError(child(child(lp, a), "name"), "limit name " + quote(opts.limits[a].name) + " is used twice");
      }
    }
  }
  opts.ipv4_prefix = static_cast<unsigned>(o.integer("ipv4_prefix", 1, 32, 32));
  opts.ipv6_prefix = static_cast<unsigned>(o.integer("ipv6_prefix", 1, 128, 64));
  opts.max_keys = static_cast<std::size_t>(o.integer("max_keys", 1, std::int64_t{1} << 30, 100'000));
  const std::string headers = o.string("headers", "denied");
  if (headers == "denied") {
    opts.headers = RateLimitHeaders::denied;
  } else if (headers == "all") {
    opts.headers = RateLimitHeaders::all;
  } else if (headers == "none") {
    opts.headers = RateLimitHeaders::none;
  } else {
    throw ConfigError(o.at("headers"), "expected \"denied\", \"all\" or \"none\", got " + quote(headers));
  }
  opts.x_ratelimit_headers = o.boolean("x_ratelimit_headers", false);
  if (const json* sh = o.find("shared")) opts.shared = shared_store(*sh, o.at("shared"), context);
  try {
    return std::make_shared<const RateLimiter>(std::move(opts));
  } catch (const std::invalid_argument& e) {
    throw ConfigError(path, e.what());
  }
}

}  // namespace gatehouse::detail
