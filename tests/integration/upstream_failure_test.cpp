// Upstream failures end to end on loopback: dead ports, silent, lying and broken upstreams (raw
// sockets that send exact bytes), and upstream keep-alive reuse. Every wait has a timeout.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "integration/fixture.hpp"
#include "support/raw_http.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;
using namespace std::string_view_literals;

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;
// Content-Length of a head, 0 when absent.
std::size_t content_length_of(const std::string& head) {
  const std::string h = lower(head);
  const auto p = h.find("\r\ncontent-length:");
  return p == std::string::npos ? 0 : std::stoul(h.substr(p + 17));
}

// Reads one request (head and Content-Length body); returns its head.
std::optional<std::string> read_request(int fd, std::string& buf, milliseconds timeout) {
  auto head = read_head(fd, buf, timeout);
  if (!head) return std::nullopt;
  const std::size_t want = content_length_of(*head);
  const auto end = SteadyClock::now() + timeout;
  while (buf.size() < want) {
    const auto left = std::chrono::duration_cast<milliseconds>(end - SteadyClock::now()).count();
    if (left <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return std::nullopt;
    char tmp[16384];
    const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return std::nullopt;
    buf.append(tmp, static_cast<std::size_t>(n));
  }
  buf.erase(0, want);
  return head;
}

// Answers every request on the connection with `response` until the peer closes (or 5 s of quiet).
void serve_keep_alive(int fd, std::string_view response) {
  std::string buf;
  while (read_request(fd, buf, 5s))
    if (!send_all(fd, response)) return;
}

// Sends `bytes`, half-closes (so the peer sees a clean EOF after them) and waits for the peer to
// close its side.
void send_then_finish(int fd, std::string_view bytes) {
  send_all(fd, bytes);
  ::shutdown(fd, SHUT_WR);
  read_until_close(fd, 3s);
}

constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";

constexpr std::string_view kGetClose = "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

}  // namespace

TEST_CASE("upstream failure: a closed port gives 502 with a JSON body carrying the request id") {
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(closed_port())});
  const auto port = g.start();
  const std::string r = exchange_raw(port, kGetClose, 3s);
  CHECK(status_of(r) == 502);
  CHECK(lower(r).find("content-type: application/json") != std::string::npos);
  const std::string body = body_of(r);
  CAPTURE(body);
  const auto idpos = body.find("\"request_id\":\"");
  REQUIRE(idpos != std::string::npos);
  const std::string id = body.substr(idpos + 14, body.find('"', idpos + 14) - (idpos + 14));
  CHECK(id.size() == 32);
  CHECK(r.find("x-request-id: " + id + "\r\n") != std::string::npos);  // the header and body agree
}

TEST_CASE("upstream failure: a dead first endpoint is skipped when connect_retries allows it") {
  RawServer live([](int fd) { serve_keep_alive(fd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlive"); });
  GatewayUnderTest g;
  auto up = Upstream::create({.name = "two",
                              .endpoints = {"127.0.0.1:" + std::to_string(closed_port()),
                                            "127.0.0.1:" + std::to_string(live.port())},
                              .connect_retries = 1});
  g.gw->route({.path = "/", .origin = up});
  const auto port = g.start();
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    const std::string r = exchange_raw(port, kGetClose, 3s);
    CHECK(status_of(r) == 200);
    CHECK(body_of(r) == "live");
  }
}

TEST_CASE("upstream failure: an upstream that never answers gives 504 after try_timeout") {
  std::atomic<bool> upstream_saw_close{false};
  RawServer silent([&](int fd) {
    std::string buf;
    read_request(fd, buf, 3s);
    // Read on without ever answering, until the gateway gives up on us.
    if (read_until_close(fd, 5s).closed) upstream_saw_close = true;
  });
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(silent.port(), {.try_timeout = 300ms})});
  const auto port = g.start();
  const auto t0 = SteadyClock::now();
  const std::string r = exchange_raw(port, kGetClose, 5s);
  const auto elapsed = since(t0);
  CHECK(status_of(r) == 504);
  CHECK(r.find("\"request_id\":\"") != std::string::npos);
  CHECK(elapsed >= 250ms);
  CHECK(elapsed < 1000ms);
  // The abandoned upstream connection is closed, not left hanging.
  for (int i = 0; i < 100 && !upstream_saw_close; ++i) std::this_thread::sleep_for(10ms);
  CHECK(upstream_saw_close);
}

TEST_CASE("upstream failure: an upstream whose only endpoint does not resolve gives 503") {
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = Upstream::create({.name = "nx", .endpoints = {"no-such-host.invalid:80"}})});
  const auto port = g.start();
  std::string r = exchange_raw(port, kGetClose, 3s);
  CHECK(status_of(r) == 503);
  CHECK(r.find("\"request_id\":\"") != std::string::npos);
  std::this_thread::sleep_for(300ms);  // after the lookup failed, too
  r = exchange_raw(port, kGetClose, 3s);
  CHECK(status_of(r) == 503);
}

TEST_CASE("upstream failure: invalid responses give 502") {
  struct Case {
    const char* name;
    std::string bytes;
  };
  const Case cases[] = {
      {"not HTTP", "NOT HTTP\r\n\r\n"},
      {"non-numeric status", "HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n"},
      {"bad version", "HTTP/x.y 200 OK\r\nContent-Length: 0\r\n\r\n"},
      {"CR injection in a header", "HTTP/1.1 200 OK\r\nX-A: one\rX-Injected: two\r\nContent-Length: 2\r\n\r\nok"},
      {"NUL in a header", std::string("HTTP/1.1 200 OK\r\nX-A: o\0e\r\nContent-Length: 2\r\n\r\nok"sv)},
      {"CL with TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
      {"two different CLs", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
      {"negative CL", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
      {"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
      {"no response at all", ""},
      {"a 101 nobody asked for", "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"},
  };
  for (const auto& c : cases) {
    const std::string name = c.name;
    CAPTURE(name);
    const std::string bytes = c.bytes;
    RawServer bad([bytes](int fd) {
      std::string buf;
      if (read_request(fd, buf, 3s)) send_then_finish(fd, bytes);
    });
    GatewayUnderTest g;
    g.gw->route({.path = "/", .origin = upstream_at(bad.port())});
    const auto port = g.start();
    const int fd = connect_loopback(port);
    send_all(fd, kGetClose);
    const auto r = read_until_close(fd, 3s);
    ::close(fd);
    CHECK(status_of(r.bytes) == 502);
    CHECK(r.bytes.find("X-Injected") == std::string::npos);
    CHECK(r.closed);
  }
}

TEST_CASE("upstream failure: a response cut short closes the client connection, and the gateway carries on") {
  std::atomic<int> served{0};
  RawServer cut([&](int fd) {
    if (served++ == 0) {
      std::string buf;
      if (read_request(fd, buf, 3s))
        send_then_finish(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789");
      return;
    }
    serve_keep_alive(fd, kOk);
  });
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(cut.port())});
  const auto port = g.start();

  const int fd = connect_loopback(port);
  send_all(fd, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");  // keep-alive: only the gateway can end it
  const auto r = read_until_close(fd, 5s);
  ::close(fd);
  CHECK(status_of(r.bytes) == 200);
  CHECK(lower(r.bytes).find("content-length: 1000") != std::string::npos);
  CHECK(r.closed);
  CHECK(r.elapsed < 2000ms);
  CHECK(body_of(r.bytes) == "0123456789");  // what arrived, and nothing made up

  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    const std::string next = exchange_raw(port, kGetClose, 3s);
    CHECK(status_of(next) == 200);
    CHECK(body_of(next) == "ok");
  }
}

TEST_CASE("upstream failure: a chunked response cut before the last chunk is not terminated for the client") {
  std::atomic<int> served{0};
  RawServer cut([&](int fd) {
    if (served++ == 0) {
      std::string buf;
      if (read_request(fd, buf, 3s))
        send_then_finish(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n");
      return;
    }
    serve_keep_alive(fd, kOk);
  });
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(cut.port())});
  const auto port = g.start();

  const int fd = connect_loopback(port);
  send_all(fd, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
  const auto r = read_until_close(fd, 5s);
  ::close(fd);
  CHECK(status_of(r.bytes) == 200);
  CHECK(lower(r.bytes).find("transfer-encoding: chunked") != std::string::npos);
  CHECK(r.bytes.find("hello") != std::string::npos);
  CHECK(r.bytes.find("\r\n0\r\n\r\n") == std::string::npos);  // no terminating chunk
  CHECK(r.closed);
  CHECK(r.elapsed < 2000ms);

  const std::string next = exchange_raw(port, kGetClose, 3s);
  CHECK(status_of(next) == 200);
}

TEST_CASE("upstream failure: a keep-alive connection the upstream closed while idle is not reused") {
  // The upstream claims keep-alive but closes every connection after one response.
  RawServer liar([](int fd) {
    std::string buf;
    if (read_request(fd, buf, 3s))
      send_all(fd, "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok");
  });
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(liar.port())});
  const auto port = g.start();
  for (int i = 0; i < 5; ++i) {
    CAPTURE(i);
    const std::string r = exchange_raw(port, kGetClose, 3s);
    CHECK(status_of(r) == 200);
    CHECK(body_of(r) == "ok");
  }
  // A request with a body cannot be retried: the stale connection must be caught before use.
  std::this_thread::sleep_for(100ms);
  const std::string r = exchange_raw(port, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", 3s);
  CHECK(status_of(r) == 200);
  CHECK(liar.connections() == 6);
}

TEST_CASE("upstream connections are reused across requests") {
  RawServer keep([](int fd) { serve_keep_alive(fd, kOk); });
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(keep.port())});
  const auto port = g.start();
  // Half on fresh client connections, half on one keep-alive client connection.
  for (int i = 0; i < 10; ++i) {
    CAPTURE(i);
    const std::string r = exchange_raw(port, kGetClose, 3s);
    CHECK(status_of(r) == 200);
  }
  const int fd = connect_loopback(port);
  for (int i = 0; i < 10; ++i) {
    CAPTURE(i);
    send_all(fd, "GET /k HTTP/1.1\r\nHost: a\r\n\r\n");
    const std::string r = receive(fd, 3s, [](const std::string& s) { return has_complete_response(s); });
    CHECK(status_of(r) == 200);
    CHECK(body_of(r) == "ok");
  }
  ::close(fd);
  CHECK(keep.connections() == 1);
}

TEST_CASE("upstream failure: a response head that stops half way gives 504 after try_timeout") {
  RawServer stalls([](int fd) {
    std::string buf;
    if (!read_request(fd, buf, 3s)) return;
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n");
    read_until_close(fd, 5s);
  });
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(stalls.port(), {.try_timeout = 300ms})});
  const auto port = g.start();
  const auto t0 = SteadyClock::now();
  const std::string r = exchange_raw(port, kGetClose, 5s);
  CHECK(status_of(r) == 504);
  CHECK(since(t0) < 1000ms);
}

TEST_CASE("upstream failure: a body that stalls half way is cut off after try_timeout, never terminated") {
  RawServer stalls([](int fd) {
    std::string buf;
    if (!read_request(fd, buf, 3s)) return;
    send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    read_until_close(fd, 5s);
  });
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(stalls.port(), {.try_timeout = 300ms})});
  const auto port = g.start();
  const int fd = connect_loopback(port);
  send_all(fd, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
  const auto r = read_until_close(fd, 5s);
  ::close(fd);
  CHECK(status_of(r.bytes) == 200);
  CHECK(r.bytes.find("hello") != std::string::npos);
  CHECK(r.bytes.find("\r\n0\r\n\r\n") == std::string::npos);
  CHECK(r.closed);
  CHECK(r.elapsed < 1000ms);
}

TEST_CASE("upstream failure: a connect that is never answered gives 504 after connect_timeout") {
  // A listener whose accept queue is full and never drained: the kernel drops further SYNs.
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(lfd, 0) == 0);
  socklen_t len = sizeof a;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    const int f = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ::connect(f, reinterpret_cast<sockaddr*>(&a), sizeof a);
    fillers.push_back(f);
  }
  std::this_thread::sleep_for(50ms);
  {
    GatewayUnderTest g;
    g.gw->route({.path = "/", .origin = upstream_at(ntohs(a.sin_port), {.connect_timeout = 300ms, .connect_retries = 0})});
    const auto port = g.start();
    const auto t0 = SteadyClock::now();
    const std::string r = exchange_raw(port, kGetClose, 5s);
    const auto elapsed = since(t0);
    CHECK(status_of(r) == 504);
    CHECK(elapsed >= 250ms);
    CHECK(elapsed < 1000ms);
  }
  for (int f : fillers) ::close(f);
  ::close(lfd);
}

TEST_CASE("upstream: interim 1xx responses are consumed and the final response goes through") {
  RawServer hints([](int fd) {
    std::string buf;
    while (read_request(fd, buf, 5s))
      if (!send_all(fd, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                        "HTTP/1.1 100 Continue\r\n\r\n"
                        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"))
        return;
  });
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(hints.port())});
  const auto port = g.start();
  for (int i = 0; i < 2; ++i) {
    const std::string r = exchange_raw(port, kGetClose, 3s);
    CHECK(status_of(r) == 200);
    CHECK(body_of(r) == "final");
  }
}

TEST_CASE("upstream failure: bytes after a response are never taken as the next request's response") {
  // A smuggled second response right behind the first, in the same write and in a later one.
  SUBCASE("same write") {
    std::atomic<int> served{0};
    RawServer smuggler([&](int fd) {
      std::string buf;
      while (read_request(fd, buf, 5s)) {
        const bool first = served++ == 0;
        if (!send_all(fd, first ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
                                : "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood"))
          return;
      }
    });
    GatewayUnderTest g;
    g.gw->route({.path = "/", .origin = upstream_at(smuggler.port())});
    const auto port = g.start();
    std::string r = exchange_raw(port, kGetClose, 3s);
    CHECK(status_of(r) == 200);
    CHECK(body_of(r) == "ok");
    r = exchange_raw(port, kGetClose, 3s);
    CHECK(status_of(r) == 200);
    CHECK(body_of(r) == "good");
  }
  SUBCASE("later write") {
    std::atomic<int> served{0};
    RawServer smuggler([&](int fd) {
      std::string buf;
      while (read_request(fd, buf, 5s)) {
        if (served++ == 0) {
          if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) return;
          std::this_thread::sleep_for(50ms);
          if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")) return;
        } else if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")) {
          return;
        }
      }
    });
    GatewayUnderTest g;
    g.gw->route({.path = "/", .origin = upstream_at(smuggler.port())});
    const auto port = g.start();
    std::string r = exchange_raw(port, kGetClose, 3s);
    CHECK(status_of(r) == 200);
    CHECK(body_of(r) == "ok");
    std::this_thread::sleep_for(150ms);
    r = exchange_raw(port, kGetClose, 3s);
    CHECK(status_of(r) == 200);
    CHECK(body_of(r) == "good");
  }
}

TEST_CASE("upstream: a close-delimited response is re-framed as chunked, complete, and its connection not reused") {
  RawServer eof([](int fd) {
    std::string buf;
    if (read_request(fd, buf, 3s)) send_then_finish(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
  });
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(eof.port())});
  const auto port = g.start();
  for (int i = 0; i < 2; ++i) {
    CAPTURE(i);
    const int fd = connect_loopback(port);
    send_all(fd, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    const std::string r = receive(fd, 3s, [](const std::string& s) { return s.find("\r\n0\r\n\r\n") != std::string::npos; });
    ::close(fd);
    CHECK(status_of(r) == 200);
    CHECK(lower(r).find("transfer-encoding: chunked") != std::string::npos);
    CHECK(body_of(r) == "d\r\nuntil the end\r\n0\r\n\r\n");
  }
  CHECK(eof.connections() == 2);
}

TEST_CASE("upstream failure: a close-delimited response ended by a reset is not passed off as complete") {
  RawServer resets([](int fd) {
    std::string buf;
    if (!read_request(fd, buf, 3s)) return;
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part ");
    std::this_thread::sleep_for(50ms);
    linger l{1, 0};  // close with RST: an abort, not the end of the body
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  });
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(resets.port())});
  const auto port = g.start();
  const int fd = connect_loopback(port);
  send_all(fd, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
  const auto r = read_until_close(fd, 3s);
  ::close(fd);
  CHECK(status_of(r.bytes) == 200);
  CHECK(r.bytes.find("first part ") != std::string::npos);
  CHECK(r.bytes.find("\r\n0\r\n\r\n") == std::string::npos);  // no terminating chunk after an abort
  CHECK(r.closed);
}
