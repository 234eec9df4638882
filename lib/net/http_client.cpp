#include "net/http_client.hpp"

#include <algorithm>
#include <array>
#include <vector>

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include "http1/parser.hpp"
#include "net/stream.hpp"
#include "tls/tls_connect.hpp"
#include "tls/tls_context.hpp"

namespace gatehouse::detail {

using steady = std::chrono::steady_clock;

struct HttpClient::Connection {
  Connection(const asio::any_io_executor& ex, asio::ssl::context* tls)
      : stream(tls ? Stream(tcp::socket(ex), *tls) : Stream(tcp::socket(ex))), resolver(ex), watchdog(ex) {}

  Stream stream;
  tcp::resolver resolver;
  asio::steady_timer watchdog;
  Http1Parser parser{Http1Parser::Kind::response};
  std::array<char, 16 * 1024> buf{};
  std::size_t beg = 0, end = 0;
  steady::time_point idle_since{};
  bool timed_out = false;
  bool closed = false;
  bool got_bytes = false;  // of the current response

  void close() noexcept {
    closed = true;
    resolver.cancel();
    stream.close();
  }
};

HttpClient::HttpClient(asio::any_io_executor executor, const Url& origin, HttpClientOptions options)
    : executor_(std::move(executor)), origin_(origin), options_(std::move(options)) {
  origin_.target = "/";
  if (origin_.tls) tls_ = make_client_context(options_.tls);
}

HttpClient::~HttpClient() { close(); }

void HttpClient::close() {
  closed_ = true;
  for (auto& c : idle_) c->close();
  idle_.clear();
  for (auto& w : busy_) {
    if (auto c = w.lock()) c->close();
  }
  busy_.clear();
}

void HttpClient::arm_watchdog(const std::shared_ptr<Connection>& c, steady::time_point deadline) {
  c->timed_out = false;  // a wait that fired after the previous request must not count for this one
  c->watchdog.expires_at(deadline);
  c->watchdog.async_wait([weak = std::weak_ptr<Connection>(c)](const asio::error_code& ec) {
    if (ec) return;
    if (auto conn = weak.lock()) {
      conn->timed_out = true;
      conn->close();
    }
  });
}

asio::awaitable<std::shared_ptr<HttpClient::Connection>> HttpClient::connect(steady::time_point deadline,
                                                                             std::string& error) {
  auto c = std::make_shared<Connection>(executor_, tls_.get());
  busy_.push_back(c);
  arm_watchdog(c, deadline);
  auto [rerr, endpoints] =
      co_await c->resolver.async_resolve(origin_.host, std::to_string(origin_.port), use_tuple);
  if (rerr) {
    error = "cannot resolve " + origin_.host + ": " + (c->timed_out ? "timed out" : rerr.message());
    co_return nullptr;
  }
  std::vector<tcp::endpoint> addresses;
  for (const auto& entry : endpoints) addresses.push_back(entry.endpoint());
  const std::string& name = options_.tls.server_name.empty() ? origin_.host : options_.tls.server_name;
  const ConnectError e = co_await connect_stream(c->stream, addresses, name, deadline);
  if (!e.ok()) {
    const std::string why = c->timed_out ? std::string("timed out") : e.reason();
    error = e.step == ConnectError::Step::connect
                ? "cannot connect to " + origin_.authority() + ": " + why
                : "TLS handshake with " + origin_.authority() + " failed: " + why;
    co_return nullptr;
  }
  co_return c;
}

asio::awaitable<HttpReply> HttpClient::exchange(Connection& c, const std::string& wire, bool head) {
  HttpReply reply;
  auto failed = [&](const std::string& what, const asio::error_code& ec) {
    reply.error = what + (c.timed_out ? std::string("timed out") : ec.message());
    return std::move(reply);
  };
  auto [werr, written] = co_await c.stream.write(asio::buffer(wire));
  if (werr) co_return failed("sending the request: ", werr);

  Response response;
  ParseLimits limits;
  limits.max_header_bytes = 64 * 1024;
  limits.max_body_bytes = options_.max_response_bytes;
  c.parser.start_response(&response, limits, head);
  c.beg = c.end = 0;
  c.got_bytes = false;
  for (;;) {
    Http1Parser::Result r;
    if (c.beg < c.end) {
      r = c.parser.feed(c.buf.data() + c.beg, c.end - c.beg);
      c.beg += r.consumed;
    } else {
      auto [rerr, n] = co_await c.stream.read_some(asio::buffer(c.buf));
      if (rerr) {
        // A TLS peer that closes without close_notify may end a length-delimited message, never
        // one delimited by the close itself: that could be a truncation attack.
        const bool eof = rerr == asio::error::eof ||
                         (rerr == asio::ssl::error::stream_truncated && !c.parser.needs_eof());
        if (!eof || c.timed_out) co_return failed("reading the response: ", rerr);
        r = c.parser.finish();
        c.closed = true;
        if (!r.message_complete && !r.error) {
          reply.error = "the connection closed before the response was complete";
          co_return reply;
        }
      } else {
        c.beg = 0;
        c.end = n;
        c.got_bytes = true;
        continue;
      }
    }
    // The parser enforces body limits on requests only: responses are capped here.
    if (r.head_complete && c.parser.content_length() > static_cast<long long>(options_.max_response_bytes)) {
      c.closed = true;
      reply.error = "the response is larger than " + std::to_string(options_.max_response_bytes) + " bytes";
      co_return reply;
    }
    for (std::string_view piece : c.parser.body()) {
      if (reply.body.size() + piece.size() > options_.max_response_bytes) {
        c.closed = true;
        reply.error = "the response is larger than " + std::to_string(options_.max_response_bytes) + " bytes";
        co_return reply;
      }
      reply.body.append(piece);
    }
    c.parser.clear_body();
    if (r.error) {
      reply.error = "invalid response: " + std::string(c.parser.error_reason());
      c.closed = true;
      co_return reply;
    }
    if (r.message_complete) break;
  }
  reply.status = response.status();
  reply.headers = std::move(response.headers());
  // Reusable only when nothing follows the response and the server keeps the connection.
  if (!c.parser.keep_alive() || c.parser.needs_eof() || c.beg != c.end) c.closed = true;
  co_return reply;
}

asio::awaitable<HttpReply> HttpClient::request(std::string method, std::string target, Fields fields,
                                               std::string body) {
  std::string wire;
  wire.reserve(256 + body.size());
  wire.append(method).append(" ").append(target.empty() ? "/" : target).append(" HTTP/1.1\r\nHost: ");
  wire.append(origin_.authority()).append("\r\nUser-Agent: gatehouse\r\n");
  for (const auto& [name, value] : fields) wire.append(name).append(": ").append(value).append("\r\n");
  if (!body.empty() || method == "POST" || method == "PUT") {
    wire.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  wire.append("\r\n").append(body);
  const bool head = method == "HEAD";
  const auto deadline = steady::now() + options_.timeout;

  // Forget closed connections that finished elsewhere.
  busy_.erase(std::remove_if(busy_.begin(), busy_.end(), [](const auto& w) { return w.expired(); }), busy_.end());

  for (int attempt = 0;; ++attempt) {
    if (closed_) {
      HttpReply reply;
      reply.error = "the client was closed";
      co_return reply;
    }
    std::shared_ptr<Connection> c;
    while (!idle_.empty() && !c) {
      // The most recently used first: the least likely to have been closed by the server.
      c = std::move(idle_.back());
      idle_.pop_back();
      if (c->closed || steady::now() - c->idle_since > options_.max_idle_time) {
        c->close();
        c.reset();
      }
    }
    const bool reused = c != nullptr;
    if (reused) {
      busy_.push_back(c);
      arm_watchdog(c, deadline);
    } else {
      std::string error;
      c = co_await connect(deadline, error);
      if (!c) {
        HttpReply reply;
        reply.error = std::move(error);
        co_return reply;
      }
    }
    HttpReply reply = co_await exchange(*c, wire, head);
    c->watchdog.cancel();
    // A keep-alive connection the server closed meanwhile fails before any byte of the answer.
    if (!reply.ok() && reused && !c->timed_out && !c->got_bytes && !closed_ && attempt == 0) {
      c->close();
      continue;
    }
    if (reply.ok() && !c->closed && !closed_ && idle_.size() < options_.max_idle_connections) {
      c->idle_since = steady::now();
      idle_.push_back(std::move(c));
    } else {
      c->close();
    }
    co_return reply;
  }
}

}  // namespace gatehouse::detail
