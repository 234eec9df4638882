// The inside of RedisClient: everything but submit() runs on the client's own I/O thread.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/ssl/context.hpp>
#include <asio/steady_timer.hpp>

#include "gatehouse/redis.hpp"
#include "net/deadline_queue.hpp"
#include "net/io_thread.hpp"
#include "redis/redis_link.hpp"
#include "util/mpsc_ring.hpp"

namespace gatehouse::detail {

class RedisClientImpl;

/// One call in flight: queued by a worker, then waiting for a connection, then sent.
struct RedisCall final : DeadlineQueue::Entry {
  /// `counted`: holds a place in max_pending (every caller's call; internal ones do not).
  RedisCall(RedisClientImpl* owner, std::string encoded, std::unique_ptr<RedisCompletion> completion, bool counted);
  ~RedisCall();
  void expire() noexcept override;
  void complete(std::error_code ec, RedisReply reply) noexcept;

  RedisClientImpl* owner;
  std::string encoded;
  std::unique_ptr<RedisCompletion> completion;  // null: internal (SCRIPT LOAD), nobody waits
  std::optional<RedisScript> script{};
  std::chrono::steady_clock::time_point deadline{};
  std::chrono::steady_clock::time_point sent_at{};
  bool done = false;      // the handler has been completed
  bool reloaded = false;  // NOSCRIPT was answered once already
  bool counted;
};

class RedisSubscriberLoop;

class RedisClientImpl {
 public:
  enum class State : int { down, connecting, ready };

  explicit RedisClientImpl(RedisOptions options);
  ~RedisClientImpl();

  void start();
  /// Any thread.
  void submit(std::string encoded, const RedisScript* script, std::chrono::milliseconds timeout,
              std::unique_ptr<RedisCompletion> completion) noexcept;

  /// I/O thread: the current primary (Sentinel) or the configured address.
  asio::awaitable<std::optional<RedisTarget>> locate_primary();
  /// Handshake commands for a data connection (AUTH, SELECT) and, with Sentinel, ROLE last.
  std::vector<RedisCommand> handshake(bool for_commands) const;
  /// I/O thread: opens a connection to the primary (checking its ROLE under Sentinel).
  asio::awaitable<std::shared_ptr<RedisLink>> open_primary(bool for_commands, std::string& error);

  void add_loop(const std::shared_ptr<RedisSubscriberLoop>& loop);

  RedisOptions options;
  std::shared_ptr<asio::ssl::context> tls;
  std::optional<RedisTarget> fixed_target;
  // The I/O thread first: it is destroyed after every I/O object below.
  std::unique_ptr<IoThread> io;

  std::atomic<State> state{State::connecting};
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> outstanding{0};
  struct Counters {
    std::atomic<std::uint64_t> calls{0}, replies{0}, timeouts{0}, failed_fast{0}, connection_lost{0}, connects{0},
        script_loads{0};
  } counters;
  mutable std::mutex primary_mutex;  // guards primary_text (stats)
  std::string primary_text;
  mutable std::mutex connected_mutex;
  mutable std::condition_variable connected_cv;

 private:
  void drain() noexcept;
  void take(std::unique_ptr<RedisCall> call) noexcept;
  void send(std::unique_ptr<RedisCall> call);
  void kick_write();
  void on_reply(RedisReply reply);
  void fail_all(std::deque<std::unique_ptr<RedisCall>>& calls, RedisErrc why) noexcept;
  void set_state(State s);
  void on_switch_master(const RedisTarget& to);
  asio::awaitable<void> connect_loop();
  asio::awaitable<void> read_loop(std::shared_ptr<RedisLink> link);
  asio::awaitable<void> stall_watch();
  void shutdown() noexcept;

  friend struct RedisCall;
  MpscRing<std::unique_ptr<RedisCall>> ring_;
  std::atomic<bool> drain_posted_{false};

  // I/O thread only.
  DeadlineQueue deadlines_;
  std::deque<std::unique_ptr<RedisCall>> waiting_;   // before the connection is ready
  std::deque<std::unique_ptr<RedisCall>> inflight_;  // sent, replies come in this order
  std::shared_ptr<RedisLink> link_;
  asio::steady_timer backoff_timer_;
  asio::steady_timer stall_timer_;
  unsigned failures_ = 0;
  std::size_t sentinel_index_ = 0;  // the sentinel that answered last is asked first
  std::optional<RedisTarget> primary_;
  std::map<std::string, RedisScript> scripts_;  // by SHA1: loaded on every new connection
  std::vector<std::weak_ptr<RedisSubscriberLoop>> loops_;
  std::shared_ptr<RedisSubscriberLoop> sentinel_watch_;
};

/// A pub/sub connection's life on the client's I/O thread: connect, SUBSCRIBE, deliver messages,
/// reconnect with backoff and subscribe again. Also follows the sentinels' +switch-master.
class RedisSubscriberLoop : public std::enable_shared_from_this<RedisSubscriberLoop> {
 public:
  using OnMessage = std::function<void(const std::string& channel, const std::string& message)>;
  using OnSubscribed = std::function<void()>;
  /// `sentinels`: connect to the sentinels (rotating) rather than the primary.
  RedisSubscriberLoop(RedisClientImpl& client, bool sentinels, OnMessage on_message, OnSubscribed on_subscribed);

  void start();
  /// I/O thread.
  void add_channel(const std::string& channel);
  /// I/O thread: drop the connection (it is made again: a failover happened).
  void reconnect() noexcept;
  void stop() noexcept;
  std::atomic<bool> subscribed{false};

 private:
  asio::awaitable<void> run();
  RedisClientImpl& client_;
  bool sentinels_;
  OnMessage on_message_;
  OnSubscribed on_subscribed_;
  std::vector<std::string> channels_;
  std::shared_ptr<RedisLink> link_;
  asio::steady_timer backoff_;
  bool stopped_ = false;
  std::size_t sentinel_index_ = 0;
};

/// Backoff before reconnect attempt `failures` (1-based): min * 2^(failures-1), at most max,
/// with up to 25% random jitter taken off.
std::chrono::milliseconds redis_backoff(const RedisOptions& o, unsigned failures);

}  // namespace gatehouse::detail
