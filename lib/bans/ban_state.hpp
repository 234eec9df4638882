// The scores and bans of a BanList, and the snapshot that the hot path reads. Everything but
// banned() takes the mutex: scoring runs on the security-event thread, the API on the admin
// thread, shared bans arrive on a background thread; none of it is on a worker's path.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "gatehouse/bans.hpp"
#include "gatehouse/metrics.hpp"
#include "gatehouse/redis.hpp"
#include "gatehouse/security_events.hpp"
#include "net/cidr.hpp"

namespace gatehouse::detail {

/// An address as 16 bytes: IPv4 as IPv4-mapped IPv6, so both spellings of a client are one key.
using AddressKey = std::array<std::uint8_t, 16>;
AddressKey address_key(const asio::ip::address& a) noexcept;
asio::ip::address address_of(const AddressKey& k);

/// The banned addresses, sorted: what every worker reads.
struct BanSet {
  std::vector<AddressKey> sorted;
  bool contains(const AddressKey& k) const noexcept;
};

struct AddressKeyHash {
  std::size_t operator()(const AddressKey& k) const noexcept;
};

/// The Redis side of bans (ban_sharing.cpp).
struct BanRedis {
  std::weak_ptr<RedisClient> client;
  std::string until_key, info_key, channel;
  std::chrono::milliseconds timeout{1000};
  std::string instance;
};

}  // namespace gatehouse::detail

namespace gatehouse {

struct BanList::Impl : std::enable_shared_from_this<BanList::Impl> {
  using time_point = Clock::time_point;
  explicit Impl(BanOptions o);

  // The hot path's view.
  const std::uint64_t id;  // per list: the key of the workers' thread-local cache
  std::atomic<std::size_t> count{0};
  std::atomic<std::uint64_t> version{0};
  std::atomic<std::shared_ptr<const detail::BanSet>> snapshot;

  mutable std::atomic<std::uint64_t> hits_accept{0}, hits_request{0};
  std::atomic<std::uint64_t> by_score{0}, by_api{0}, by_shared{0}, refused_full{0}, redis_errors{0}, resyncs{0};

  BanOptions options;
  std::shared_ptr<const Clock> clock;
  detail::CidrSet allow;
  std::optional<detail::BanRedis> redis;

  mutable std::mutex mutex;
  struct Score {
    double value = 0;
    time_point at{};
    unsigned offences = 0;
    time_point last_offence{};
  };
  std::unordered_map<detail::AddressKey, Score, detail::AddressKeyHash> scores;
  struct Entry {
    Ban ban;
    bool stored = false;  // in Redis (or Redis not in use)
  };
  std::map<detail::AddressKey, Entry> bans;
  std::weak_ptr<SecurityEvents> events;
  std::vector<MetricCallbackHandle> metric_handles;

  void observe(const SecurityEvent& e);
  /// `source`: "score", "api" or "shared"; `share`: write it to Redis.
  bool add(const asio::ip::address& client, time_point until, std::string reason, std::string source, unsigned offence,
           bool share);
  bool lift(const asio::ip::address& client, bool share, std::string_view why);
  void expire();
  std::vector<Ban> list() const;
  double score(const asio::ip::address& client) const;

  // Redis (ban_sharing.cpp).
  void share_ban(const Ban& ban);
  void share_lift(const asio::ip::address& client);
  void on_shared_message(std::string_view message);
  /// After (re)subscribing: load what others banned meanwhile, store what we could not. `done`
  /// (may be null) runs on the Redis client's thread with whether the load worked.
  void resync(std::function<void(bool ok)> done);

 private:
  void publish_locked();
  double decayed(const Score& s, time_point now) const;
  void evict_locked(time_point now);
  void report(SecurityEventKind kind, const Ban& ban, std::string reason);
};

}  // namespace gatehouse
