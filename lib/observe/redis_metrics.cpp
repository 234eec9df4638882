#include "observe/redis_metrics.hpp"

#include <algorithm>
#include <functional>

#include "gatehouse/redis.hpp"

namespace gatehouse::detail {
namespace {

// Redis connections are named in the configuration: a handful.
constexpr std::size_t kMaxRedisConnections = 64;

using ClientList = std::vector<std::pair<std::string, std::weak_ptr<RedisClient>>>;

// The newest live client of each name, with its stats.
std::vector<std::pair<std::string, RedisClientStats>> live_stats(std::mutex& mu, ClientList& clients) {
  std::vector<std::pair<std::string, RedisClientStats>> out;
  std::lock_guard lock(mu);
  std::erase_if(clients, [](const auto& c) { return c.second.expired(); });
  for (auto it = clients.rbegin(); it != clients.rend(); ++it) {
    const auto client = it->second.lock();
    if (!client) continue;
    if (std::any_of(out.begin(), out.end(), [&](const auto& o) { return o.first == it->first; })) continue;
    out.emplace_back(it->first, client->stats());
  }
  return out;
}

}  // namespace

RedisMetrics::RedisMetrics(MetricsRegistry& r) {
  std::weak_ptr<Watch> weak = watch_;
  // One sample per connection from one field of its stats.
  auto per_client = [weak](std::function<double(const RedisClientStats&)> field) {
    return [weak, field = std::move(field)] {
      std::vector<MetricSample> samples;
      if (auto w = weak.lock())
        for (const auto& [name, s] : live_stats(w->mu, w->clients)) samples.push_back({{name}, field(s)});
      return samples;
    };
  };
  connected_ = r.gauge_callback({"gatehouse_redis_connected", "1 when the Redis connection is up, by connection.",
                                 {"redis"}, kMaxRedisConnections},
                                per_client([](const RedisClientStats& s) { return s.connected ? 1.0 : 0.0; }));
  pending_ = r.gauge_callback({"gatehouse_redis_pending_calls", "Redis calls sent or queued, not yet answered.",
                               {"redis"}, kMaxRedisConnections},
                              per_client([](const RedisClientStats& s) { return static_cast<double>(s.pending); }));
  calls_ = r.counter_callback({"gatehouse_redis_calls_total", "Redis calls accepted (each ends with a reply or an error).",
                               {"redis"}, kMaxRedisConnections},
                              per_client([](const RedisClientStats& s) { return static_cast<double>(s.calls); }));
  errors_ = r.counter_callback(
      {"gatehouse_redis_call_errors_total",
       "Redis calls without a reply, by reason: timeout (no answer in time), unavailable (refused at once: not "
       "connected or too many pending), connection_lost (the connection dropped while the call was out).",
       {"redis", "reason"}, kMaxRedisConnections * 3},
      [weak] {
        std::vector<MetricSample> samples;
        if (auto w = weak.lock())
          for (const auto& [name, s] : live_stats(w->mu, w->clients)) {
            samples.push_back({{name, "timeout"}, static_cast<double>(s.timeouts)});
            samples.push_back({{name, "unavailable"}, static_cast<double>(s.failed_fast)});
            samples.push_back({{name, "connection_lost"}, static_cast<double>(s.connection_lost)});
          }
        return samples;
      });
  connects_ = r.counter_callback({"gatehouse_redis_connects_total",
                                  "Connections made to Redis (the first, then one per reconnect).", {"redis"},
                                  kMaxRedisConnections},
                                 per_client([](const RedisClientStats& s) { return static_cast<double>(s.connects); }));
  script_loads_ = r.counter_callback(
      {"gatehouse_redis_script_loads_total", "Lua scripts loaded again after Redis answered NOSCRIPT.", {"redis"},
       kMaxRedisConnections},
      per_client([](const RedisClientStats& s) { return static_cast<double>(s.script_loads); }));
}

void RedisMetrics::watch(std::string name, const std::shared_ptr<RedisClient>& client) {
  if (!client) return;
  std::lock_guard lock(watch_->mu);
  for (const auto& [n, c] : watch_->clients)
    if (c.lock() == client && n == name) return;
  watch_->clients.emplace_back(std::move(name), client);
}

}  // namespace gatehouse::detail
