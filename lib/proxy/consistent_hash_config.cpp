// The config factory of the "consistent_hash" policy:
//   {"policy": "consistent_hash",
//    "key": "client_address" | {"header": name} | {"cookie": name} | {"claim": name or "/json/pointer"},
//    "fallback": "round_robin" (default) | "least_request" | "random" | {"policy": ..., options},
//    "table_size": 65537 (a prime)}
#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "gatehouse/load_balancers.hpp"
#include "proxy/maglev_table.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

namespace {

HashKey parse_key(const json& j, const std::string& path) {
  if (j.is_string()) {
    if (j.get_ref<const std::string&>() != "client_address")
      throw ConfigError(path, "expected \"client_address\" or an object with \"header\", \"cookie\" or \"claim\"");
    return HashKey{HashKey::Source::client_address, {}};
  }
  Object o(j, path, {"header", "cookie", "claim"});
  const std::string which = o.one_of({"header", "cookie", "claim"});
  HashKey key;
  if (which == "header") {
    key.source = HashKey::Source::header;
    key.name = header_name(*o.find("header"), o.at("header"));
  } else {
    key.source = which == "cookie" ? HashKey::Source::cookie : HashKey::Source::claim;
    key.name = as_string(*o.find(which), o.at(which));
    if (key.name.empty()) throw ConfigError(o.at(which), "must not be empty");
  }
  return key;
}

// The policies a request without a key may fall back on (not consistent_hash itself).
LoadBalancerFactory parse_fallback(const json& j, const std::string& path) {
  const json options = j.is_string() ? json{{"policy", j}} : j;
  const std::string policy_path = j.is_string() ? path : child(path, "policy");
  const auto& o = as_object(options, path);
  const auto it = o.find("policy");
  if (it == o.end()) throw ConfigError(path, "missing \"policy\" (one of: \"round_robin\", \"least_request\", \"random\")");
  const std::string& name = as_string(*it, policy_path);
  if (name == "round_robin") return make_round_robin(options, path);
  if (name == "least_request") return make_least_request(options, path);
  if (name == "random") return make_random_choice(options, path);
  throw ConfigError(policy_path, "the fallback must be \"round_robin\", \"least_request\" or \"random\", got " + quote(name));
}

}  // namespace

LoadBalancerFactory make_consistent_hash(const json& options, const std::string& path) {
  Object o(options, path, {"policy", "key", "fallback", "table_size"});
  ConsistentHashOptions ch;
  ch.key = parse_key(o.require("key"), o.at("key"));
  if (const json* f = o.find("fallback")) ch.fallback = parse_fallback(*f, o.at("fallback"));
  ch.table_size = static_cast<std::size_t>(o.integer("table_size", 3, 10'000'019, 65537));
  if (!is_prime(ch.table_size)) throw ConfigError(o.at("table_size"), "must be a prime (65537, 131071, 655373...)");
  return consistent_hash(std::move(ch));
}

}  // namespace gatehouse::detail
