// Automatic bans: security events (refused credentials, WAF matches, rate-limit rejections,
// protocol violations, address-filter hits) add to a score per client address that decays with
// time; over a threshold the client is banned for a while, longer on each repeat offence. Banned
// clients are refused at accept (the connection closes before TLS) and, behind a trusted proxy,
// per request (403). With a Redis connection, bans are shared by every gateway instance.
#pragma once
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <asio/ip/address.hpp>

#include "gatehouse/clock.hpp"
#include "gatehouse/security_event.hpp"

namespace gatehouse {

class EventSink;
class MetricsRegistry;
class RedisClient;
class SecurityEvents;

struct BanOptions {
  /// Score added by one event of each kind (indexed by SecurityEventKind); 0: the kind is ignored.
  std::array<double, kSecurityEventKindCount> weights = default_weights();
  /// A client whose score reaches this is banned.
  double threshold = 20;
  /// The score halves every half_life.
  std::chrono::seconds half_life{60};
  /// The first ban lasts ban_time; each repeat offence `growth` times the previous, at most max_ban_time.
  std::chrono::seconds ban_time{600};
  double growth = 2;
  std::chrono::seconds max_ban_time{86'400};
  /// Offences older than this are forgotten (the next ban is a first one again).
  std::chrono::seconds forget_after{86'400};
  /// CIDR blocks never banned (monitoring, the office, the other gateways). Throws
  /// std::invalid_argument at construction for an invalid block.
  std::vector<std::string> allow{};
  /// Clients scored at once (bounded memory); a full table drops its lowest scores first.
  std::size_t max_clients = 100'000;
  /// Bans at once; further bans are refused (counted) until some expire.
  std::size_t max_bans = 100'000;
  /// Shares bans through Redis (a sorted set scored by expiry plus a pub/sub channel). Null: local.
  std::shared_ptr<RedisClient> redis{};
  /// Keys "{<prefix>}:until" and "{<prefix>}:info" (one hash slot), channel "<prefix>:events".
  std::string redis_prefix = "gatehouse:bans";
  std::chrono::milliseconds redis_timeout{1000};
  /// Names this instance in shared bans; empty: host name and process id.
  std::string instance{};
  /// The clock scores and bans are measured by (tests: testing::FakeClock). Null: the system clock.
  std::shared_ptr<const Clock> clock{};

  /// authentication_failure 2, authorization_denied 1, rate_limited 1, ip_filtered 2,
  /// waf_match 5, protocol_violation 4, tls_handshake_failure 1, client_certificate_rejected 2.
  static std::array<double, kSecurityEventKindCount> default_weights() noexcept;
};

/// One ban.
struct Ban {
  asio::ip::address client{};
  std::chrono::system_clock::time_point since{}, until{};
  std::string reason{};
  /// "score" (this instance scored it), "api" (added by hand), "shared" (from another instance).
  std::string source{};
  unsigned offence = 1;  ///< 1 for a first ban, 2 for the second within forget_after...
};

struct BanStats {
  std::size_t active = 0;
  std::size_t tracked_clients = 0;
  std::uint64_t hits_at_accept = 0;   ///< connections closed at accept
  std::uint64_t hits_per_request = 0; ///< requests answered 403
  std::uint64_t by_score = 0, by_api = 0, by_shared = 0;  ///< bans made, by source
  std::uint64_t refused_full = 0;     ///< bans not made: max_bans reached
  std::uint64_t redis_errors = 0;     ///< Redis calls that failed (the local ban holds)
  /// Shared bans loaded from Redis: at start and after each gap in the subscription (bans
  /// published while this instance was not listening are picked up so).
  std::uint64_t resyncs = 0;
};

class BanList : public std::enable_shared_from_this<BanList> {
 public:
  /// With a Redis client: subscribes to the channel and loads the current bans in the background.
  static std::shared_ptr<BanList> create(BanOptions options);
  ~BanList();
  BanList(const BanList&) = delete;
  BanList& operator=(const BanList&) = delete;

  /// Any thread, lock-free (one atomic load when nobody is banned).
  bool banned(const asio::ip::address& client) const noexcept;
  /// Any thread: someone is banned (one atomic load).
  bool any() const noexcept;
  /// Counts a refusal (metrics); `at_accept`: the connection was closed at accept.
  void count_hit(bool at_accept) const noexcept;

  /// Scores one event (its client_ip); may ban. Called by sink()'s write, off the worker threads.
  void observe(const SecurityEvent& event);
  /// An EventSink that feeds observe(): add it to the SecurityEvents whose events are scored.
  std::shared_ptr<EventSink> sink();
  /// Where ban and unban events are reported (null: nowhere).
  void set_event_reporter(std::shared_ptr<SecurityEvents> events);
  /// Declares gatehouse_bans_active, gatehouse_ban_hits_total{stage}, gatehouse_bans_total{source}.
  void attach_metrics(MetricsRegistry& registry);

  /// Bans `client` for `duration` (replacing a shorter ban). False when it is allow-listed or
  /// max_bans is reached.
  bool ban(const asio::ip::address& client, std::chrono::seconds duration, std::string reason);
  /// Lifts a ban (on every instance when shared). False when there was none.
  bool lift(const asio::ip::address& client);
  /// The active bans, soonest expiry first.
  std::vector<Ban> list() const;
  /// The client's score now.
  double score(const asio::ip::address& client) const;
  bool allowed(const asio::ip::address& client) const noexcept;
  /// Drops bans that expired (and stale scores); runs every second by itself, callable by tests.
  void expire();
  BanStats stats() const;
  const BanOptions& options() const noexcept;

  struct Impl;     // the scores and bans (lib/bans/ban_state.hpp)
  struct Runtime;  // timer and Redis subscription

 private:
  explicit BanList(BanOptions options);
  void start();
  std::shared_ptr<Impl> impl_;
  std::unique_ptr<Runtime> runtime_;
};

}  // namespace gatehouse
