// A small HTTP/1.1 client for the gateway's own calls (key servers, introspection endpoints):
// one origin, keep-alive connections, TLS with certificate and host-name verification, a deadline
// on every request and a cap on response size. Responses are parsed by llhttp, as upstream ones.
#pragma once
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ssl/context.hpp>

#include "gatehouse/headers.hpp"
#include "gatehouse/tls_options.hpp"
#include "net/url.hpp"

namespace gatehouse::detail {

struct HttpClientOptions {
  UpstreamTls tls{};  ///< CA bundle (empty: the system's), SNI override, client certificate
  std::chrono::milliseconds timeout{5'000};  ///< whole request: resolve, connect, send, receive
  std::size_t max_response_bytes = 1 << 20;  ///< body bytes; larger responses are an error
  std::size_t max_idle_connections = 8;
  std::chrono::seconds max_idle_time{30};
};

struct HttpReply {
  std::string error;  ///< empty when a complete response arrived (whatever its status)
  unsigned status = 0;
  Headers headers;
  std::string body;
  bool ok() const noexcept { return error.empty(); }
};

class HttpClient {
 public:
  /// Talks to `origin`'s scheme, host and port (its target is ignored). Not thread-safe: every call
  /// must come from `executor`'s one thread. Throws std::runtime_error when the TLS context cannot
  /// be built (unreadable CA bundle or client certificate).
  HttpClient(asio::any_io_executor executor, const Url& origin, HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  using Fields = std::vector<std::pair<std::string, std::string>>;
  /// Never throws for network or protocol trouble: HttpReply::error says what went wrong. A request
  /// that fails on a reused keep-alive connection before any response byte is retried once on a
  /// new connection. `fields` must not contain Host, Content-Length or Connection.
  asio::awaitable<HttpReply> request(std::string method, std::string target, Fields fields,
                                     std::string body = {});
  /// Closes idle connections. Requests in flight end with an error.
  void close();

  const Url& origin() const noexcept { return origin_; }

 private:
  struct Connection;
  asio::awaitable<std::shared_ptr<Connection>> connect(std::chrono::steady_clock::time_point deadline,
                                                        std::string& error);
  asio::awaitable<HttpReply> exchange(Connection& c, const std::string& wire, bool head);
  void arm_watchdog(const std::shared_ptr<Connection>& c, std::chrono::steady_clock::time_point deadline);

  asio::any_io_executor executor_;
  Url origin_;
  HttpClientOptions options_;
  std::shared_ptr<asio::ssl::context> tls_;
  std::vector<std::shared_ptr<Connection>> idle_;  // most recently used last
  bool closed_ = false;
  std::vector<std::weak_ptr<Connection>> busy_;
};

/// One HttpClient per origin, all on one executor and with the same options.
class HttpClients {
 public:
  HttpClients(asio::any_io_executor executor, HttpClientOptions options)
      : executor_(std::move(executor)), options_(std::move(options)) {}
  /// Throws as the HttpClient constructor.
  HttpClient& for_url(const Url& url) {
    auto& slot = clients_[url.origin()];
    if (!slot) slot = std::make_unique<HttpClient>(executor_, url, options_);
    return *slot;
  }
  void close() {
    for (auto& [origin, client] : clients_) client->close();
  }

 private:
  asio::any_io_executor executor_;
  HttpClientOptions options_;
  std::map<std::string, std::unique_ptr<HttpClient>> clients_;
};

}  // namespace gatehouse::detail
