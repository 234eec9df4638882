// A Redis client for state shared between gateway instances (rate limits, bans): pipelined on one
// connection per client, a hard deadline per call, reconnecting with backoff, TLS, AUTH, EVALSHA
// with automatic SCRIPT LOAD, pub/sub on a separate connection, and Redis Sentinel.
//
// One client owns one background I/O thread and one command connection; every worker thread
// calls it without blocking (calls cross to the I/O thread through a bounded lock-free queue and
// are written back to back, so calls from all workers share one pipeline). Handlers run on the
// handler's associated executor: a coroutine's own (asio::use_awaitable), the executor given to
// asio::bind_executor, or, for a plain callback, the client's I/O thread (keep those short).
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>

#include "gatehouse/tls_options.hpp"

namespace gatehouse {

/// Redis Sentinel: ask these sentinels for the current primary of `master_name`, and follow
/// failovers (+switch-master).
struct RedisSentinelOptions {
  std::vector<std::string> addresses{};  ///< "host:port" of each sentinel; empty: no Sentinel
  std::string master_name{};
  std::string username{};  ///< AUTH for the sentinels themselves (optional)
  std::string password{};
};

struct RedisOptions {
  std::string name = "default";           ///< for logs and metrics
  std::string address = "127.0.0.1:6379"; ///< "host:port" or "[v6]:port" (unused with Sentinel)
  std::string username{};                 ///< AUTH username (ACL); empty: AUTH with password only
  std::string password{};                 ///< empty: no AUTH
  std::optional<UpstreamTls> tls{};       ///< set: TLS to Redis (and to the sentinels)
  unsigned db = 0;                        ///< SELECT on connect
  std::chrono::milliseconds timeout{5};   ///< default deadline of a call
  std::chrono::milliseconds connect_timeout{1000};  ///< TCP + TLS + AUTH
  std::chrono::milliseconds reconnect_min{50};      ///< first backoff; doubles up to reconnect_max
  std::chrono::milliseconds reconnect_max{2000};
  /// Replies outstanding longer than this mean the server is stuck: the connection is dropped and
  /// made again.
  std::chrono::milliseconds stall_timeout{2000};
  /// Calls queued or awaiting a reply (timed-out ones included until their reply comes or the
  /// connection drops); beyond, calls fail at once with RedisErrc::overloaded.
  std::size_t max_pending = 16384;
  RedisSentinelOptions sentinel{};
};

/// Why a call produced no reply. A Redis error reply ("-ERR ...") is not one of these: it arrives
/// as a RedisReply of type error.
enum class RedisErrc {
  timed_out = 1,    ///< the call's deadline passed
  unavailable,      ///< not connected (Redis down, reconnecting after backoff)
  overloaded,       ///< max_pending calls outstanding
  connection_lost,  ///< the connection dropped after the command was sent (it may have run)
  shutting_down,    ///< the client is being destroyed
};
const std::error_category& redis_category() noexcept;
std::error_code make_error_code(RedisErrc e) noexcept;

/// One RESP reply.
struct RedisReply {
  enum class Type : unsigned char { nil, integer, string, status, error, array };
  Type type = Type::nil;
  std::int64_t integer = 0;
  std::string str{};                  ///< string, status and error text
  std::vector<RedisReply> elements{};  ///< array

  bool is_nil() const noexcept { return type == Type::nil; }
  bool is_error() const noexcept { return type == Type::error; }
  bool is_integer() const noexcept { return type == Type::integer; }
  bool is_array() const noexcept { return type == Type::array; }
  /// string or status
  bool is_string() const noexcept { return type == Type::string || type == Type::status; }
};

/// A command and its arguments, encoded once (on the calling thread).
class RedisCommand {
 public:
  RedisCommand() = default;
  RedisCommand(std::initializer_list<std::string_view> args) {
    for (auto a : args) arg(a);
  }
  RedisCommand& arg(std::string_view a);
  RedisCommand& arg(std::int64_t n);
  template <class Range>
  RedisCommand& args(const Range& r) {
    for (const auto& a : r) arg(std::string_view(a));
    return *this;
  }
  std::size_t size() const noexcept { return count_; }
  /// The RESP array, ready to send.
  std::string encoded() const;

 private:
  std::string body_{};
  std::size_t count_ = 0;
};

/// A Lua script known by its SHA1. Cheap to copy.
class RedisScript {
 public:
  explicit RedisScript(std::string source);
  const std::string& source() const noexcept { return data_->source; }
  const std::string& sha1() const noexcept { return data_->sha1; }  ///< 40 lowercase hex digits

 private:
  struct Data {
    std::string source, sha1;
  };
  std::shared_ptr<const Data> data_;
};

struct RedisClientStats {
  bool connected = false;
  std::uint64_t calls = 0;        ///< accepted calls
  std::uint64_t replies = 0;      ///< calls completed with a reply
  std::uint64_t timeouts = 0;
  std::uint64_t failed_fast = 0;  ///< failed unsent: Redis unavailable, or too many calls pending
  std::uint64_t connection_lost = 0;
  std::uint64_t connects = 0;     ///< connections made (1 + reconnects)
  std::uint64_t script_loads = 0; ///< SCRIPT LOADs after NOSCRIPT
  std::size_t pending = 0;        ///< outstanding now
  std::string primary{};          ///< "host:port" in use, or last tried
};

namespace detail {
class RedisClientImpl;
/// A caller's handler, type-erased; completed once, from the client's I/O thread.
class RedisCompletion {
 public:
  virtual ~RedisCompletion() = default;
  virtual void complete(std::error_code ec, RedisReply reply) = 0;
};
template <class Handler>
class RedisCompletionFor final : public RedisCompletion {
 public:
  RedisCompletionFor(Handler&& h, const asio::any_io_executor& fallback)
      : handler_(std::move(h)),
        work_(asio::prefer(asio::get_associated_executor(handler_, fallback),
                           asio::execution::outstanding_work.tracked)) {}
  void complete(std::error_code ec, RedisReply reply) override {
    asio::post(work_, [h = std::move(handler_), ec, r = std::move(reply)]() mutable { std::move(h)(ec, std::move(r)); });
  }

 private:
  Handler handler_;
  asio::any_io_executor work_;  // keeps the caller's executor running until the handler is posted
};
}  // namespace detail

class RedisSubscriber;

class RedisClient : public std::enable_shared_from_this<RedisClient> {
 public:
  /// Starts the I/O thread and connects in the background. Throws std::invalid_argument for a bad
  /// address and std::runtime_error for unusable TLS files.
  static std::shared_ptr<RedisClient> create(RedisOptions options);
  /// Fails every outstanding call with shutting_down and joins the I/O thread. Do not release the
  /// last reference from a plain callback running on the client's own thread.
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  const RedisOptions& options() const noexcept;
  /// The I/O thread's executor (where plain callbacks run).
  asio::any_io_executor executor() const noexcept;
  bool connected() const noexcept;
  RedisClientStats stats() const;
  /// Blocks (not for worker threads) until connected or `timeout` passes; for start-up and tests.
  bool wait_connected(std::chrono::milliseconds timeout) const;

  /// Any thread, never blocks. Completion signature void(std::error_code, RedisReply).
  template <class Token>
  auto async_command(RedisCommand cmd, std::chrono::milliseconds timeout, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, RedisReply)>(
        [this](auto handler, RedisCommand c, std::chrono::milliseconds t) {
          submit(std::move(c), nullptr, t, make_completion(std::move(handler)));
        },
        token, std::move(cmd), timeout);
  }
  template <class Token>
  auto async_command(RedisCommand cmd, Token&& token) {
    return async_command(std::move(cmd), options().timeout, std::forward<Token>(token));
  }

  /// EVALSHA sha numkeys keys... args...; on a NOSCRIPT reply, SCRIPT LOAD and EVALSHA again, both
  /// within the same deadline.
  template <class Token>
  auto async_evalsha(const RedisScript& script, std::span<const std::string_view> keys,
                     std::span<const std::string_view> args, std::chrono::milliseconds timeout, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, RedisReply)>(
        [this](auto handler, RedisCommand c, RedisScript s, std::chrono::milliseconds t) {
          submit(std::move(c), &s, t, make_completion(std::move(handler)));
        },
        token, evalsha_command(script, keys, args), script, timeout);
  }
  template <class Token>
  auto async_evalsha(const RedisScript& script, std::initializer_list<std::string_view> keys,
                     std::initializer_list<std::string_view> args, std::chrono::milliseconds timeout, Token&& token) {
    return async_evalsha(script, std::span<const std::string_view>(keys.begin(), keys.size()),
                         std::span<const std::string_view>(args.begin(), args.size()), timeout,
                         std::forward<Token>(token));
  }

  /// A new pub/sub connection to the same server (following Sentinel too), on this client's thread.
  std::shared_ptr<RedisSubscriber> subscriber();

 private:
  explicit RedisClient(RedisOptions options);
  template <class Handler>
  std::unique_ptr<detail::RedisCompletion> make_completion(Handler&& h) {
    using H = std::decay_t<Handler>;
    return std::make_unique<detail::RedisCompletionFor<H>>(std::move(h), executor());
  }
  static RedisCommand evalsha_command(const RedisScript& script, std::span<const std::string_view> keys,
                                      std::span<const std::string_view> args);
  void submit(RedisCommand cmd, const RedisScript* script, std::chrono::milliseconds timeout,
              std::unique_ptr<detail::RedisCompletion> completion) noexcept;

  friend class RedisSubscriber;
  std::unique_ptr<detail::RedisClientImpl> impl_;
};

/// A pub/sub connection: after every reconnect (and after AUTH and SELECT), every channel and
/// pattern still subscribed is subscribed again. Messages published while disconnected are lost
/// (that is Redis pub/sub): gaps() counts those outages and on_subscribed tells when to reload.
/// A subscribed connection that stops answering its PINGs for stall_timeout is made again.
class RedisSubscriber {
 public:
  /// `channel` is the channel the message was published on (for a pattern, the one it matched).
  using MessageHandler = std::function<void(std::string_view channel, std::string_view message)>;
  ~RedisSubscriber();  ///< unsubscribes; no handler runs after it returns
  RedisSubscriber(const RedisSubscriber&) = delete;
  RedisSubscriber& operator=(const RedisSubscriber&) = delete;

  /// Any thread. `handler` runs on `ex` for each message on `channel` (SUBSCRIBE).
  void subscribe(std::string channel, asio::any_io_executor ex, MessageHandler handler);
  /// Any thread. `handler` runs on `ex` for each message on a channel matching `pattern` (PSUBSCRIBE).
  void psubscribe(std::string pattern, asio::any_io_executor ex, MessageHandler handler);
  /// Any thread: drops the handlers of `channel` (or, with `pattern`, of that pattern) and
  /// unsubscribes; it is not subscribed again after a reconnect.
  void unsubscribe(std::string channel, bool pattern = false);
  /// Any thread. `handler` runs on `ex` each time every channel and pattern is confirmed
  /// subscribed: at first, after each reconnect (a gap: messages were missed, reload the state
  /// they describe) and after a subscribe() on a live connection.
  void on_subscribed(asio::any_io_executor ex, std::function<void()> handler);
  /// Connected, and every subscription confirmed.
  bool subscribed() const noexcept;
  /// Subscribed connections lost so far: each one a gap in which messages may have been missed.
  std::uint64_t gaps() const noexcept;

 private:
  friend class RedisClient;
  struct Impl;
  explicit RedisSubscriber(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace gatehouse

template <>
struct std::is_error_code_enum<gatehouse::RedisErrc> : std::true_type {};
