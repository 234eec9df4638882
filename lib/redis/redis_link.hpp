// One connection to a Redis server (or a sentinel): opening it (TCP, TLS, AUTH and the other
// handshake commands, under one deadline) and reading replies. The command pipeline and the
// pub/sub loop are built on it.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ssl/context.hpp>

#include "gatehouse/redis.hpp"
#include "net/stream.hpp"
#include "redis/resp_reader.hpp"

namespace gatehouse::detail {

struct RedisTarget {
  std::string host;
  std::uint16_t port = 0;
  std::string text() const;
  bool operator==(const RedisTarget&) const = default;
  /// "host:port" or "[v6]:port"; throws std::invalid_argument.
  static RedisTarget parse(const std::string& address);
};

/// AUTH [username] password, or nothing when the password is empty.
std::optional<RedisCommand> auth_command(const std::string& username, const std::string& password);

class RedisLink : public std::enable_shared_from_this<RedisLink> {
 public:
  RedisLink(const asio::any_io_executor& ex, asio::ssl::context* tls);
  Stream stream;
  RespReader reader;
  std::vector<char> read_buffer = std::vector<char>(16 * 1024);
  // The command pipeline's output: `out` collects, `writing` is on the wire.
  std::string out, writing;
  bool write_pending = false;
  bool closed = false;
  /// Queues bytes for the wire; flush() starts writing them (several appends, one write).
  void append(std::string_view data) { out += data; }
  void flush();
  void close() noexcept {
    closed = true;
    stream.close();
  }
  /// Reads until `n` replies arrived (appended to `replies`). False on error or close.
  asio::awaitable<bool> read_replies(std::size_t n, std::vector<RedisReply>& replies);

 private:
  static asio::awaitable<void> write_tls(std::shared_ptr<RedisLink> self);
  void wrote(const asio::error_code& ec);
};

/// Connects to `target`, sends `handshake` pipelined and reads their replies, all before
/// `deadline`. Returns the link, or null with `error` saying why (an error reply counts as a
/// failure, except where `tolerate_errors`).
asio::awaitable<std::shared_ptr<RedisLink>> open_redis_link(asio::any_io_executor ex, asio::ssl::context* tls,
                                                            const RedisTarget& target,
                                                            const std::vector<RedisCommand>& handshake,
                                                            std::chrono::steady_clock::time_point deadline,
                                                            std::vector<RedisReply>& replies, std::string& error);

/// The primary's address from a reply to SENTINEL get-master-addr-by-name.
std::optional<RedisTarget> parse_master_addr(const RedisReply& reply);
/// The new primary from a +switch-master message ("<name> <old-ip> <old-port> <new-ip> <new-port>")
/// when it is about `master_name`.
std::optional<RedisTarget> parse_switch_master(std::string_view message, std::string_view master_name);

}  // namespace gatehouse::detail
