#include "redis/redis_link.hpp"

#include <charconv>
#include <stdexcept>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include "proxy/upstream_impl.hpp"
#include "tls/tls_connect.hpp"

namespace gatehouse::detail {

std::string RedisTarget::text() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

RedisTarget RedisTarget::parse(const std::string& address) {
  auto t = parse_endpoint(address);
  return {t.host, t.port};
}

std::optional<RedisCommand> auth_command(const std::string& username, const std::string& password) {
  if (password.empty()) return std::nullopt;
  RedisCommand c{"AUTH"};
  if (!username.empty()) c.arg(username);
  c.arg(password);
  return c;
}

RedisLink::RedisLink(const asio::any_io_executor& ex, asio::ssl::context* tls)
    : stream(tls ? Stream(tcp::socket(ex), *tls) : Stream(tcp::socket(ex))) {}

void RedisLink::flush() {
  if (write_pending || out.empty() || closed) return;
  writing.swap(out);
  out.clear();
  write_pending = true;
  if (stream.is_tls()) {
    try {
      asio::co_spawn(stream.socket().get_executor(), write_tls(shared_from_this()), asio::detached);
    } catch (const std::exception&) {
      close();  // out of memory: the calls in flight fail as on a lost connection
    }
    return;
  }
  asio::async_write(stream.socket(), asio::buffer(writing),
                    [self = shared_from_this()](const asio::error_code& ec, std::size_t) { self->wrote(ec); });
}

asio::awaitable<void> RedisLink::write_tls(std::shared_ptr<RedisLink> self) {
  asio::error_code ec = asio::error::no_memory;
  try {
    auto [wec, n] = co_await self->stream.write(asio::buffer(self->writing));
    (void)n;
    ec = wec;
  } catch (const std::exception&) {
    // Out of memory inside the write: the link closes (its calls fail as on a lost connection).
  }
  self->wrote(ec);
}

void RedisLink::wrote(const asio::error_code& ec) {
  write_pending = false;
  writing.clear();
  if (ec) {
    close();
    return;
  }
  flush();
}

asio::awaitable<bool> RedisLink::read_replies(std::size_t n, std::vector<RedisReply>& replies) {
  std::size_t got = 0;
  for (;;) {
    bool error = false;
    while (got < n) {
      auto r = reader.next(error);
      if (!r) break;
      replies.push_back(std::move(*r));
      ++got;
    }
    if (error) co_return false;
    if (got == n) co_return true;
    auto [ec, size] = co_await stream.read_some(asio::buffer(read_buffer));
    if (ec || !reader.feed(read_buffer.data(), size)) co_return false;
  }
}

asio::awaitable<std::shared_ptr<RedisLink>> open_redis_link(asio::any_io_executor ex, asio::ssl::context* tls,
                                                            const RedisTarget& target,
                                                            const std::vector<RedisCommand>& handshake,
                                                            std::chrono::steady_clock::time_point deadline,
                                                            std::vector<RedisReply>& replies, std::string& error) {
  auto link = std::make_shared<RedisLink>(ex, tls);
  std::vector<tcp::endpoint> endpoints;
  asio::error_code aec;
  const auto address = asio::ip::make_address(target.host, aec);
  if (!aec) {
    endpoints.emplace_back(address, target.port);
  } else {
    tcp::resolver resolver(ex);
    auto [rec, results] = co_await resolver.async_resolve(target.host, std::to_string(target.port), use_tuple);
    if (rec) {
      error = "resolving " + target.host + ": " + rec.message();
      co_return nullptr;
    }
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }
  auto connected = co_await connect_stream(link->stream, endpoints, target.host, deadline);
  if (!connected.ok()) {
    error = (connected.step == ConnectError::Step::handshake ? "TLS handshake: " : "connect: ") + connected.reason();
    co_return nullptr;
  }
  asio::error_code ignored;
  link->stream.socket().set_option(asio::socket_base::keep_alive(true), ignored);
  if (handshake.empty()) co_return link;

  std::string out;
  for (const auto& c : handshake) out += c.encoded();
  // The deadline covers the handshake too: a server that accepts but never answers (stopped)
  // gets its connection closed, which ends the reads below.
  auto timer = std::make_shared<asio::steady_timer>(ex, deadline);
  std::weak_ptr<RedisLink> weak = link;
  timer->async_wait([weak](const asio::error_code& ec) {
    if (ec) return;
    if (auto l = weak.lock()) l->close();
  });
  auto [wec, n] = co_await link->stream.write(asio::buffer(out));
  (void)n;
  std::vector<RedisReply> got;
  const bool ok = !wec && co_await link->read_replies(handshake.size(), got);
  timer->cancel();
  if (!ok || link->closed) {
    error = link->closed ? "handshake timed out" : "connection closed during handshake";
    co_return nullptr;
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i].is_error()) {
      error = "handshake command " + std::to_string(i + 1) + " refused: " + got[i].str;
      co_return nullptr;
    }
  }
  replies = std::move(got);
  co_return link;
}

std::optional<RedisTarget> parse_master_addr(const RedisReply& reply) {
  if (!reply.is_array() || reply.elements.size() != 2) return std::nullopt;
  const auto& host = reply.elements[0];
  const auto& port = reply.elements[1];
  if (!host.is_string() || !port.is_string() || host.str.empty()) return std::nullopt;
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.str.data(), port.str.data() + port.str.size(), p);
  if (ec != std::errc{} || end != port.str.data() + port.str.size() || p == 0 || p > 65535) return std::nullopt;
  return RedisTarget{host.str, static_cast<std::uint16_t>(p)};
}

std::optional<RedisTarget> parse_switch_master(std::string_view message, std::string_view master_name) {
  std::vector<std::string_view> parts;
  while (!message.empty()) {
    const auto sp = message.find(' ');
    parts.push_back(message.substr(0, sp));
    if (sp == std::string_view::npos) break;
    message.remove_prefix(sp + 1);
  }
  if (parts.size() != 5 || parts[0] != master_name) return std::nullopt;
  RedisReply r;
  r.type = RedisReply::Type::array;
  r.elements.resize(2);
  r.elements[0].type = r.elements[1].type = RedisReply::Type::string;
  r.elements[0].str = parts[3];
  r.elements[1].str = parts[4];
  return parse_master_addr(r);
}

}  // namespace gatehouse::detail
