// The "bans" section: automatic bans (gatehouse/bans.hpp).
//
//   bans  optional object, every key optional:
//     threshold        integer >= 1, default 20: the score at which a client is banned
//     weights          object: security event kind -> integer 0..1000 (score per event);
//                      kinds left out keep their default (BanOptions::default_weights)
//     half_life_s      integer >= 1, default 60: the score halves in this time
//     ban_s            integer >= 1, default 600: the first ban
//     growth           integer 1..100, default 2: each repeat offence multiplies the ban
//     max_ban_s        integer >= ban_s, default 86400
//     forget_after_s   integer >= 1, default 86400: offences older than this are forgotten
//     allow            array of CIDR blocks never banned, default []
//     max_clients      integer >= 1, default 100000: clients scored at once
//     max_bans         integer >= 1, default 100000
//     redis            name of a "redis" entry: bans are shared through it; absent: local only
//     redis_prefix     default "gatehouse:bans"; redis_timeout_ms duration, default 1000
//     instance         name of this instance in shared bans, default "<hostname>:<pid>"
#include <nlohmann/json.hpp>

#include "config/reload_reuse.hpp"
#include "config/sections.hpp"
#include "gatehouse/bans.hpp"
#include "net/cidr.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

std::shared_ptr<BanList> parse_bans(const json& j, const std::string& path, const ConfigContext& context,
                                    ConfigReuse* reuse) {
  Object o(j, path,
           {"threshold", "weights", "half_life_s", "ban_s", "growth", "max_ban_s", "forget_after_s", "allow",
            "max_clients", "max_bans", "redis", "redis_prefix", "redis_timeout_ms", "instance"});
  BanOptions b;
  b.threshold = static_cast<double>(o.integer("threshold", 1, 1'000'000, 20));
  if (const json* w = o.find("weights")) {
    const std::string wp = o.at("weights");
    for (const auto& [name, value] : as_object(*w, wp).items()) {
      const auto kind = security_event_kind(name);
      if (!kind) {
        std::vector<std::string> kinds;
        for (std::size_t i = 0; i < kSecurityEventKindCount; ++i)
          kinds.emplace_back(to_string(static_cast<SecurityEventKind>(i)));
        throw ConfigError(child(wp, name), "unknown security event kind " + quote(name) + did_you_mean(name, kinds));
      }
      b.weights[static_cast<std::size_t>(*kind)] = static_cast<double>(as_integer(value, child(wp, name), 0, 1000));
    }
  }
  const std::int64_t day_s = 366LL * 86400;
  b.half_life = std::chrono::seconds(o.integer("half_life_s", 1, day_s, 60));
  b.ban_time = std::chrono::seconds(o.integer("ban_s", 1, day_s, 600));
  b.growth = static_cast<double>(o.integer("growth", 1, 100, 2));
  b.max_ban_time = std::chrono::seconds(o.integer("max_ban_s", 1, day_s, std::max<std::int64_t>(86'400, b.ban_time.count())));
  if (b.max_ban_time < b.ban_time) throw ConfigError(o.at("max_ban_s"), "must be at least ban_s");
  b.forget_after = std::chrono::seconds(o.integer("forget_after_s", 1, day_s, 86'400));
  if (const json* a = o.find("allow")) {
    const std::string ap = o.at("allow");
    std::size_t i = 0;
    for (const json& block : as_array(*a, ap)) {
      const std::string p = child(ap, i++);
      const std::string& s = as_string(block, p);
      if (!Cidr::parse(s)) throw ConfigError(p, "invalid CIDR block " + quote(s) + ": expected an address with an optional /prefix");
      b.allow.push_back(s);
    }
  }
  b.max_clients = static_cast<std::size_t>(o.integer("max_clients", 1, 100'000'000, 100'000));
  b.max_bans = static_cast<std::size_t>(o.integer("max_bans", 1, 100'000'000, 100'000));
  std::string fingerprint = definition_fingerprint(j);
  if (const json* r = o.find("redis")) {
    const std::string& name = as_string(*r, o.at("redis"));
    const auto it = context.redis.find(name);
    if (it == context.redis.end()) throw ConfigError(o.at("redis"), "no Redis connection named " + quote(name) + " in \"redis\"");
    b.redis = it->second;
    char id[64];
    std::snprintf(id, sizeof id, "\nredis %p", static_cast<const void*>(b.redis.get()));
    fingerprint += id;
  }
  b.redis_prefix = o.string("redis_prefix", b.redis_prefix);
  if (b.redis_prefix.empty()) throw ConfigError(o.at("redis_prefix"), "must not be empty");
  b.redis_timeout = o.duration("redis_timeout_ms", b.redis_timeout);
  b.instance = o.string("instance", "");
  return reuse_or_make<BanList>(reuse, "bans", "bans", fingerprint, [&] { return BanList::create(b); });
}

}  // namespace gatehouse::detail
