// The "redis" section: named Redis connections that rate limits and bans refer to by name.
//
//   redis  object: name (non-empty) -> object:
//     address              "host:port" or "[v6]:port", default "127.0.0.1:6379" (not with sentinel)
//     username             AUTH username (Redis ACL), default "" (AUTH with the password only)
//     password | password_env   the password, or the environment variable holding it (at load);
//                          none: no AUTH
//     tls                  optional object, as an upstream's {ca, server_name, client_cert, client_key}
//     db                   integer 0..1000000, default 0
//     timeout_ms           default deadline of a call, default 5
//     connect_timeout_ms (1000), reconnect_min_ms (50), reconnect_max_ms (2000),
//     stall_timeout_ms (2000)   durations
//     max_pending          integer 1..10000000, default 16384: calls outstanding at most
//     sentinel             optional object {addresses: ["host:port", ...] (non-empty),
//                          master_name (required), username, password | password_env}
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "config/reload_reuse.hpp"
#include "config/sections.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

namespace {

std::string address_at(const json& j, const std::string& path) {
  const std::string& a = as_string(j, path);
  if (auto problem = endpoint_problem(a)) throw ConfigError(path, "invalid Redis address " + quote(a) + ": " + *problem);
  return a;
}

std::string password_at(const Object& o) {
  if (o.has("password") && o.has("password_env"))
    throw ConfigError(o.at("password_env"), "give only one of \"password\" and \"password_env\"");
  if (const json* p = o.find("password")) return as_string(*p, o.at("password"));
  if (const json* e = o.find("password_env")) {
    const std::string name = name_string(*e, o.at("password_env"), "environment variable name");
    const char* value = std::getenv(name.c_str());
    if (!value || !*value) throw ConfigError(o.at("password_env"), "the environment variable " + quote(name) + " is not set");
    return value;
  }
  return {};
}

}  // namespace

RedisOptions parse_redis_options(const json& j, const std::string& path, const std::string& name) {
  Object o(j, path,
           {"address", "username", "password", "password_env", "tls", "db", "timeout_ms", "connect_timeout_ms",
            "reconnect_min_ms", "reconnect_max_ms", "stall_timeout_ms", "max_pending", "sentinel"});
  RedisOptions r;
  r.name = name;
  if (const json* a = o.find("address")) r.address = address_at(*a, o.at("address"));
  r.username = o.string("username", "");
  r.password = password_at(o);
  if (!r.username.empty() && r.password.empty())
    throw ConfigError(o.at("username"), "a username needs a password (or password_env)");
  if (const json* t = o.find("tls")) r.tls = parse_upstream_tls(*t, o.at("tls"));
  r.db = static_cast<unsigned>(o.integer("db", 0, 1'000'000, 0));
  r.timeout = o.duration("timeout_ms", r.timeout);
  r.connect_timeout = o.duration("connect_timeout_ms", r.connect_timeout);
  r.reconnect_min = o.duration("reconnect_min_ms", r.reconnect_min);
  r.reconnect_max = o.duration("reconnect_max_ms", r.reconnect_max);
  if (r.reconnect_max < r.reconnect_min)
    throw ConfigError(o.at("reconnect_max_ms"), "must be at least reconnect_min_ms");
  r.stall_timeout = o.duration("stall_timeout_ms", r.stall_timeout);
  r.max_pending = static_cast<std::size_t>(o.integer("max_pending", 1, 10'000'000, static_cast<std::int64_t>(r.max_pending)));
  if (const json* s = o.find("sentinel")) {
    if (o.has("address"))
      throw ConfigError(o.at("address"), "give either \"address\" or \"sentinel\": with Sentinel the primary's address comes from the sentinels");
    const std::string sp = o.at("sentinel");
    Object so(*s, sp, {"addresses", "master_name", "username", "password", "password_env"});
    const std::string ap = so.at("addresses");
    const json& list = as_array(so.require("addresses"), ap);
    if (list.empty()) throw ConfigError(ap, "needs at least one sentinel address");
    std::size_t i = 0;
    for (const json& a : list) r.sentinel.addresses.push_back(address_at(a, child(ap, i++)));
    r.sentinel.master_name = name_string(so.require("master_name"), so.at("master_name"), "master name");
    r.sentinel.username = so.string("username", "");
    r.sentinel.password = password_at(so);
  }
  return r;
}

std::map<std::string, std::shared_ptr<RedisClient>, std::less<>> parse_redis(const json& section, const std::string& path,
                                                                              ConfigReuse* reuse) {
  std::map<std::string, std::shared_ptr<RedisClient>, std::less<>> out;
  for (const auto& [name, entry] : as_object(section, path).items()) {
    const std::string p = child(path, name);
    if (name.empty()) throw ConfigError(p, "a Redis connection needs a non-empty name");
    RedisOptions options = parse_redis_options(entry, p, name);
    out[name] = reuse_or_make<RedisClient>(reuse, "redis", name, definition_fingerprint(entry), [&] {
      try {
        return RedisClient::create(options);
      } catch (const std::exception& e) {
        throw ConfigError(p, e.what());
      }
    });
  }
  return out;
}

}  // namespace gatehouse::detail
