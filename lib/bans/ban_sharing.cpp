// Bans shared through Redis. A sorted set scored by expiry (unix ms) holds who is banned until
// when, a hash beside it the details; both keys carry one hash tag, so the scripts below run on
// one Redis Cluster slot. Every change is published on a channel: the other instances apply it at
// once (well within a second), and an instance that (re)subscribes loads the set. Redis being
// away never blocks a ban: the local ban holds, and is stored when Redis is back.
#include <chrono>

#include <asio/ip/address.hpp>
#include <nlohmann/json.hpp>

#include "bans/ban_state.hpp"
#include "util/log.hpp"

namespace gatehouse {

using nlohmann::json;

namespace {

std::int64_t unix_ms(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
Clock::time_point from_unix_ms(std::int64_t ms) {
  return Clock::time_point(std::chrono::duration_cast<Clock::time_point::duration>(std::chrono::milliseconds(ms)));
}

// KEYS: until, info. ARGV: ip, until_ms, info, now_ms, channel, message.
const RedisScript& ban_script() {
  static const RedisScript s(R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not current) or tonumber(current) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', KEYS[1], last[2])
  redis.call('PEXPIREAT', KEYS[2], last[2])
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
)lua");
  return s;
}

// KEYS: until, info. ARGV: ip, channel, message.
const RedisScript& lift_script() {
  static const RedisScript s(R"lua(
local n = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return n
)lua");
  return s;
}

// KEYS: until, info. ARGV: now_ms. Returns {ip, until_ms, info, ...} of the bans still running.
const RedisScript& load_script() {
  static const RedisScript s(R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local live = redis.call('ZRANGE', KEYS[1], 0, 9999, 'WITHSCORES')
local out = {}
for i = 1, #live, 2 do
  out[#out + 1] = live[i]
  out[#out + 1] = live[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], live[i]) or ''
end
return out
)lua");
  return s;
}

json ban_info(const Ban& b) {
  return {{"reason", b.reason}, {"offence", b.offence}, {"since", unix_ms(b.since)}};
}

void log_redis_failure(const std::string& what, std::error_code ec, const RedisReply& r) {
  detail::log(nullptr, LogLevel::warning,
              "bans: " + what + " in Redis failed: " + (ec ? ec.message() : r.str) + " (the local ban list holds)");
}

}  // namespace

void BanList::Impl::share_ban(const Ban& ban) {
  auto client = redis->client.lock();
  if (!client) return;
  const std::string ip = ban.client.to_string();
  const json message{{"op", "ban"},           {"ip", ip},          {"until", unix_ms(ban.until)},
                     {"reason", ban.reason},  {"offence", ban.offence}, {"origin", redis->instance}};
  const std::string until = std::to_string(unix_ms(ban.until));
  const std::string info = ban_info(ban).dump();
  const std::string now = std::to_string(unix_ms(clock->now()));
  const std::string text = message.dump();
  std::weak_ptr<Impl> weak = shared_from_this();
  client->async_evalsha(ban_script(), {redis->until_key, redis->info_key}, {ip, until, info, now, redis->channel, text},
                        redis->timeout, [weak, key = detail::address_key(ban.client)](std::error_code ec, RedisReply r) {
                          auto self = weak.lock();
                          if (!self) return;
                          if (ec || r.is_error()) {
                            self->redis_errors.fetch_add(1, std::memory_order_relaxed);
                            log_redis_failure("storing a ban", ec, r);
                            return;
                          }
                          std::lock_guard lock(self->mutex);
                          if (auto it = self->bans.find(key); it != self->bans.end()) it->second.stored = true;
                        });
}

void BanList::Impl::share_lift(const asio::ip::address& client_ip) {
  auto client = redis->client.lock();
  if (!client) return;
  const std::string ip = client_ip.to_string();
  const std::string text = json{{"op", "unban"}, {"ip", ip}, {"origin", redis->instance}}.dump();
  std::weak_ptr<Impl> weak = shared_from_this();
  client->async_evalsha(lift_script(), {redis->until_key, redis->info_key}, {ip, redis->channel, text}, redis->timeout,
                        [weak](std::error_code ec, RedisReply r) {
                          auto self = weak.lock();
                          if (!self || (!ec && !r.is_error())) return;
                          self->redis_errors.fetch_add(1, std::memory_order_relaxed);
                          log_redis_failure("lifting a ban", ec, r);
                        });
}

void BanList::Impl::on_shared_message(std::string_view text) {
  const json m = json::parse(text, nullptr, false);
  if (!m.is_object() || !m.contains("op") || !m.contains("ip") || !m["ip"].is_string()) return;
  if (m.value("origin", std::string()) == redis->instance) return;  // our own, applied already
  asio::error_code ec;
  const auto ip = asio::ip::make_address(m["ip"].get<std::string>(), ec);
  if (ec) return;
  const std::string op = m["op"].is_string() ? m["op"].get<std::string>() : std::string();
  if (op == "ban" && m.contains("until") && m["until"].is_number_integer()) {
    const unsigned offence = m.contains("offence") && m["offence"].is_number_unsigned() ? m["offence"].get<unsigned>() : 1;
    std::string reason = m.contains("reason") && m["reason"].is_string() ? m["reason"].get<std::string>() : "";
    add(ip, from_unix_ms(m["until"].get<std::int64_t>()), std::move(reason), "shared", offence, false);
  } else if (op == "unban") {
    lift(ip, false, "lifted on another instance");
  }
}

void BanList::Impl::resync(std::function<void(bool ok)> done) {
  auto client = redis->client.lock();
  if (!client) return;
  std::weak_ptr<Impl> weak = shared_from_this();
  const std::string now = std::to_string(unix_ms(clock->now()));
  client->async_evalsha(load_script(), {redis->until_key, redis->info_key}, {now}, redis->timeout,
                        [weak, done = std::move(done)](std::error_code ec, RedisReply r) {
                          auto self = weak.lock();
                          if (!self) return;
                          if (ec || !r.is_array()) {
                            self->redis_errors.fetch_add(1, std::memory_order_relaxed);
                            log_redis_failure("loading the bans", ec, r);
                            if (done) done(false);
                            return;
                          }
                          self->resyncs.fetch_add(1, std::memory_order_relaxed);
                          for (std::size_t i = 0; i + 2 < r.elements.size(); i += 3) {
                            asio::error_code aec;
                            const auto ip = asio::ip::make_address(r.elements[i].str, aec);
                            if (aec) continue;
                            std::int64_t until = 0;
                            try {
                              until = static_cast<std::int64_t>(std::stod(r.elements[i + 1].str));
                            } catch (...) {
                              continue;
                            }
                            const json info = json::parse(r.elements[i + 2].str, nullptr, false);
                            std::string reason = info.is_object() && info.contains("reason") && info["reason"].is_string()
                                                     ? info["reason"].get<std::string>()
                                                     : "";
                            const unsigned offence = info.is_object() && info.contains("offence") &&
                                                             info["offence"].is_number_unsigned()
                                                         ? info["offence"].get<unsigned>()
                                                         : 1;
                            self->add(ip, from_unix_ms(until), std::move(reason), "shared", offence, false);
                          }
                          // Bans made while Redis was away: store them now.
                          std::vector<Ban> unstored;
                          {
                            std::lock_guard lock(self->mutex);
                            for (const auto& [k, e] : self->bans)
                              if (!e.stored) unstored.push_back(e.ban);
                          }
                          for (const Ban& b : unstored) self->share_ban(b);
                          if (done) done(true);
                        });
}

}  // namespace gatehouse
