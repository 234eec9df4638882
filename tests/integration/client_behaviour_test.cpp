// Client-side behaviour end to end on loopback: slow and idle clients, Expect: 100-continue (curl
// and raw), HTTP/1.0, HEAD, large streamed responses and graceful stop. Every wait has a timeout.
#include <doctest/doctest.h>
#include <httplib.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "integration/fixture.hpp"
#include "support/httplib_server.hpp"
#include "support/raw_http.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;
// A file in /tmp removed at scope exit.
struct TempFile {
  explicit TempFile(const std::string& content = {}) {
    char name[] = "/tmp/gatehouse-it-XXXXXX";
    const int fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    path = name;
    std::size_t off = 0;
    while (off < content.size()) {
      const ssize_t n = ::write(fd, content.data() + off, content.size() - off);
      REQUIRE(n > 0);
      off += static_cast<std::size_t>(n);
    }
    ::close(fd);
  }
  ~TempFile() { std::remove(path.c_str()); }
  std::string read() const {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
  }
  std::string path;
};

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string pattern_bytes(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 4093) & 0xff);
  return s;
}

// A cpp-httplib service: /echo answers with the size of the body it received, /slow answers after
// 500 ms, /big serves `big`, anything else answers "hello".
struct Service {
  Service() {
    server.Post("/echo", [this](const httplib::Request& req, httplib::Response& res) {
      ++hits;
      res.set_content(std::to_string(req.body.size()), "text/plain");
    });
    server.Get("/slow", [this](const httplib::Request&, httplib::Response& res) {
      ++hits;
      std::this_thread::sleep_for(500ms);
      res.set_content("late", "text/plain");
    });
    server.Get("/big", [this](const httplib::Request&, httplib::Response& res) {
      ++hits;
      res.set_content(big, "application/octet-stream");
    });
    server.Get(R"(/.*)", [this](const httplib::Request&, httplib::Response& res) {
      ++hits;
      res.set_content("hello", "text/plain");
    });
    port = runner.start(server);
  }
  httplib::Server server;
  unsigned short port = 0;
  std::atomic<int> hits{0};
  std::string big;
  ServerThread runner;  // last: stops the server before the members its handlers use
};

// Lets through only requests that carry X-Allowed.
class RequireAllowed : public Middleware {
 public:
  Flow on_request(Exchange& ex) const override {
    if (!ex.request().headers().contains("x-allowed")) return Flow::respond(Status::forbidden);
    return Flow::next();
  }
};

Route ok_handler_route() {
  return {.path = "/", .origin = [](Exchange&) { return Flow::respond(Response(Status::ok, "here")); }};
}

}  // namespace

TEST_CASE("client: an incomplete head gets 408 and the connection is closed after header_timeout") {
  GatewayUnderTest g(GatewayOptions{.limits = {.header_timeout = 300ms}});
  g.gw->route(ok_handler_route());
  const auto port = g.start();
  const int fd = connect_loopback(port);
  send_all(fd, "GET / HTTP/1.1\r\nHost: a\r\n");
  const auto r = read_until_close(fd, 3s);
  ::close(fd);
  CHECK(status_of(r.bytes) == 408);
  CHECK(r.bytes.find("Connection: close") != std::string::npos);
  CHECK(r.closed);
  CHECK(r.elapsed >= 250ms);
  CHECK(r.elapsed < 1000ms);
}

TEST_CASE("client: a connection that sends nothing is closed silently after header_timeout") {
  GatewayUnderTest g(GatewayOptions{.limits = {.header_timeout = 300ms}});
  g.gw->route(ok_handler_route());
  const auto port = g.start();
  const int fd = connect_loopback(port);
  const auto r = read_until_close(fd, 3s);
  ::close(fd);
  CHECK(r.bytes.empty());
  CHECK(r.closed);
  CHECK(r.elapsed >= 250ms);
  CHECK(r.elapsed < 1000ms);
}

TEST_CASE("client: an idle keep-alive connection is closed after idle_timeout") {
  GatewayUnderTest g(GatewayOptions{.limits = {.idle_timeout = 300ms}});
  g.gw->route(ok_handler_route());
  const auto port = g.start();
  const int fd = connect_loopback(port);
  send_all(fd, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  const std::string first = receive(fd, 3s, [](const std::string& s) { return has_complete_response(s); });
  CHECK(status_of(first) == 200);
  CHECK(first.find("Connection: close") == std::string::npos);
  const auto r = read_until_close(fd, 3s);
  ::close(fd);
  CHECK(r.bytes.empty());
  CHECK(r.closed);
  CHECK(r.elapsed >= 250ms);
  CHECK(r.elapsed < 1000ms);
}

TEST_CASE("client: Expect: 100-continue with curl uploads the whole body") {
  Service svc;
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(svc.port)});
  const auto port = g.start();
  const TempFile upload(pattern_bytes(2 << 20));
  const TempFile out;
  // A long expect100 timeout: curl must get its 100 Continue from the gateway, not give up waiting.
  // (octet-stream: cpp-httplib refuses form-urlencoded bodies over 8 KiB, curl's default type.)
  const auto t0 = SteadyClock::now();
  const auto res = run_command("timeout 30 curl -sS --noproxy '*' --max-time 20 --expect100-timeout 10 -o " + out.path +
                               " -w '%{http_code}' -H 'Expect: 100-continue' -H 'Content-Type: application/octet-stream' --data-binary @" + upload.path +
                               " http://127.0.0.1:" + std::to_string(port) + "/echo");
  const auto elapsed = since(t0);
  CAPTURE(res.output);
  CHECK(res.exit_code == 0);
  CHECK(res.output == "200");
  CHECK(out.read() == std::to_string(2 << 20));
  CHECK(elapsed < 5000ms);
}

TEST_CASE("client: Expect: 100-continue refused by a middleware gets the 403 without a 100 Continue") {
  Service svc;
  GatewayUnderTest g;
  g.gw->route({.path = "/", .middleware = {std::make_shared<RequireAllowed>()}, .origin = upstream_at(svc.port)});
  const auto port = g.start();
  const std::string head = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2097152\r\nExpect: 100-continue\r\n";

  SUBCASE("refused: 403 first, body never read") {
    const int fd = connect_loopback(port);
    send_all(fd, head + "\r\n");
    const auto r = read_until_close(fd, 3s);
    ::close(fd);
    CHECK(status_of(r.bytes) == 403);
    CHECK(r.bytes.find("100 Continue") == std::string::npos);
    CHECK(r.bytes.find("Connection: close") != std::string::npos);
    CHECK(r.closed);
    CHECK(svc.hits == 0);
  }
  SUBCASE("allowed: 100 Continue, then the body goes through") {
    const int fd = connect_loopback(port);
    send_all(fd, head + "X-Allowed: yes\r\n\r\n");
    const std::string interim = receive(fd, 3s, [](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; });
    CHECK(interim.rfind("HTTP/1.1 100 Continue\r\n", 0) == 0);
    send_all(fd, pattern_bytes(2 << 20));
    const std::string r = receive(fd, 5s, [](const std::string& s) { return has_complete_response(s); });
    ::close(fd);
    const std::string& final_response = r;
    CHECK(status_of(final_response) == 200);
    CHECK(body_of(final_response) == std::to_string(2 << 20));
    CHECK(svc.hits == 1);
  }
}

TEST_CASE("client: HTTP/1.0 gets a close-delimited response") {
  SUBCASE("Connection: close semantics") {
    Service svc;
    GatewayUnderTest g;
    g.gw->route({.path = "/", .origin = upstream_at(svc.port)});
    const auto port = g.start();
    const int fd = connect_loopback(port);
    send_all(fd, "GET /x HTTP/1.0\r\n\r\n");
    const auto r = read_until_close(fd, 3s);
    ::close(fd);
    CHECK(r.bytes.rfind("HTTP/1.0 200 ", 0) == 0);
    CHECK(lower(head_of(r.bytes)).find("connection: close") != std::string::npos);
    CHECK(body_of(r.bytes) == "hello");
    CHECK(r.closed);
    CHECK(r.elapsed < 2000ms);
  }
  SUBCASE("a chunked upstream response is delivered close-delimited") {
    RawServer chunked([](int fd) {
      std::string buf;
      if (!read_head(fd, buf, 3s)) return;
      send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
                   "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
      read_until_close(fd, 3s);
    });
    GatewayUnderTest g;
    g.gw->route({.path = "/", .origin = upstream_at(chunked.port())});
    const auto port = g.start();
    const int fd = connect_loopback(port);
    send_all(fd, "GET /x HTTP/1.0\r\n\r\n");
    const auto r = read_until_close(fd, 3s);
    ::close(fd);
    const std::string head = lower(head_of(r.bytes));
    CAPTURE(head);
    CHECK(r.bytes.rfind("HTTP/1.0 200 ", 0) == 0);
    CHECK(head.find("transfer-encoding") == std::string::npos);
    CHECK(head.find("content-length") == std::string::npos);
    CHECK(head.find("connection: close") != std::string::npos);
    CHECK(body_of(r.bytes) == "hello world");
    CHECK(r.closed);
  }
}

TEST_CASE("client: HEAD passes the upstream's Content-Length through without a body") {
  RawServer up([](int fd) {
    std::string buf;
    while (auto head = read_head(fd, buf, 5s)) {
      if (head->rfind("HEAD ", 0) == 0) {
        if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 12345\r\nContent-Type: text/plain\r\n\r\n")) return;
      } else if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody")) {
        return;
      }
    }
  });
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(up.port())});
  const auto port = g.start();
  const int fd = connect_loopback(port);
  // A GET right behind the HEAD on the same connection: any body bytes would show up before it.
  send_all(fd, "HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /g HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  const auto r = read_until_close(fd, 3s);
  ::close(fd);
  CHECK(r.closed);
  const std::string first = head_of(r.bytes);
  CHECK(status_of(first) == 200);
  CHECK(lower(first).find("content-length: 12345") != std::string::npos);
  const std::string rest = r.bytes.substr(std::min(first.size(), r.bytes.size()));
  CHECK(rest.rfind("HTTP/1.1 200 ", 0) == 0);
  CHECK(body_of(rest) == "body");
}

TEST_CASE("client: an 8 MiB response streams through intact (curl)") {
  Service svc;
  svc.big = pattern_bytes(8 << 20);
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(svc.port)});
  const auto port = g.start();
  const TempFile out;
  const auto res = run_command("timeout 30 curl -sS --noproxy '*' --max-time 20 -o " + out.path +
                               " -w '%{http_code}' http://127.0.0.1:" + std::to_string(port) + "/big");
  CAPTURE(res.output);
  CHECK(res.exit_code == 0);
  CHECK(res.output == "200");
  const std::string got = out.read();
  CHECK(got.size() == svc.big.size());
  CHECK(fnv1a(got) == fnv1a(svc.big));
}

TEST_CASE("client: graceful stop lets the in-flight request finish and refuses new connections") {
  Service svc;
  GatewayUnderTest g(GatewayOptions{.drain_timeout = 3000ms});
  g.gw->route({.path = "/", .origin = upstream_at(svc.port)});
  const auto port = g.start();

  std::string in_flight;
  std::thread client([&] { in_flight = exchange_raw(port, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n", 5s); });
  std::this_thread::sleep_for(100ms);
  const auto t_stop = SteadyClock::now();
  std::thread stopper([&] { g.gw->stop(); });
  stopper.join();
  std::this_thread::sleep_for(50ms);
  // The listener is closed while the request is still in flight.
  bool refused = false;
  try {
    ::close(connect_loopback(port));
  } catch (const std::runtime_error&) {
    refused = true;
  }
  CHECK(refused);
  client.join();
  CHECK(status_of(in_flight) == 200);
  CHECK(body_of(in_flight) == "late");
  CHECK(in_flight.find("Connection: close") != std::string::npos);
  g.gw->wait();
  const auto waited = since(t_stop);
  CHECK(waited < 3000ms);
  MESSAGE("stop() to wait() returning: " << waited.count() << " ms");
}

TEST_CASE("client: a body that stops arriving gets 408 after request_timeout") {
  std::atomic<bool> upstream_saw_close{false};
  RawServer up([&](int fd) {
    std::string buf;
    if (!read_head(fd, buf, 3s)) return;
    if (read_until_close(fd, 5s).closed) upstream_saw_close = true;
  });
  GatewayUnderTest g(GatewayOptions{.limits = {.request_timeout = 300ms}});
  g.gw->route({.path = "/", .origin = upstream_at(up.port())});
  const auto port = g.start();
  const int fd = connect_loopback(port);
  send_all(fd, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789");
  const auto r = read_until_close(fd, 3s);
  ::close(fd);
  CHECK(status_of(r.bytes) == 408);
  CHECK(r.bytes.find("Connection: close") != std::string::npos);
  CHECK(r.closed);
  CHECK(r.elapsed < 1000ms);
  for (int i = 0; i < 100 && !upstream_saw_close; ++i) std::this_thread::sleep_for(10ms);
  CHECK(upstream_saw_close);  // the half-sent request is abandoned upstream too
}

TEST_CASE("client: a client that stops reading is cut off after send_timeout") {
  constexpr std::size_t kTotal = 256u << 20;
  std::atomic<bool> upstream_cut{false};
  RawServer up([&](int fd) {
    std::string buf;
    if (!read_head(fd, buf, 3s)) return;
    if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kTotal) + "\r\n\r\n")) return;
    const std::string piece(64 * 1024, 'x');
    for (std::size_t sent = 0; sent < kTotal; sent += piece.size()) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 5000) <= 0) return;  // the gateway stopped reading: it should have closed
      if (!send_all(fd, piece)) {
        upstream_cut = true;
        return;
      }
    }
  });
  GatewayUnderTest g(GatewayOptions{.limits = {.send_timeout = 300ms}});
  g.gw->route({.path = "/", .origin = upstream_at(up.port())});
  const auto port = g.start();
  const int fd = connect_loopback(port);
  send_all(fd, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
  std::this_thread::sleep_for(1500ms);  // not reading
  CHECK(upstream_cut);                  // the gateway gave up on the client and on the upstream
  const auto r = read_until_close(fd, 5s);
  ::close(fd);
  CHECK(r.closed);
  CHECK(status_of(r.bytes) == 200);
  CHECK(r.bytes.size() < kTotal);
  MESSAGE("bytes buffered before the cut: " << r.bytes.size());
}

TEST_CASE("client: graceful stop closes idle keep-alive connections at once") {
  GatewayUnderTest g(GatewayOptions{.drain_timeout = 3000ms});
  g.gw->route(ok_handler_route());
  const auto port = g.start();
  const int fd = connect_loopback(port);
  send_all(fd, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  const std::string first = receive(fd, 3s, [](const std::string& s) { return has_complete_response(s); });
  CHECK(status_of(first) == 200);
  const auto t0 = SteadyClock::now();
  g.gw->stop();
  const auto r = read_until_close(fd, 3s);
  ::close(fd);
  CHECK(r.closed);
  CHECK(r.bytes.empty());
  CHECK(r.elapsed < 500ms);
  g.gw->wait();
  CHECK(since(t0) < 1000ms);
}

TEST_CASE("client: graceful stop ends a request still stuck at drain_timeout") {
  RawServer never([](int fd) {
    std::string buf;
    if (read_head(fd, buf, 3s)) read_until_close(fd, 5s);
  });
  GatewayUnderTest g(GatewayOptions{.drain_timeout = 500ms});
  g.gw->route({.path = "/", .origin = upstream_at(never.port())});
  const auto port = g.start();
  const int fd = connect_loopback(port);
  send_all(fd, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  std::this_thread::sleep_for(100ms);
  const auto t0 = SteadyClock::now();
  g.gw->stop();
  g.gw->wait();
  const auto waited = since(t0);
  CHECK(waited >= 400ms);
  CHECK(waited < 1500ms);
  const auto r = read_until_close(fd, 2s);
  ::close(fd);
  CHECK(r.closed);
}

TEST_CASE("client: HTTP/1.0 with Connection: keep-alive keeps the connection for length-delimited responses") {
  Service svc;
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(svc.port)});
  const auto port = g.start();
  const int fd = connect_loopback(port);
  for (int i = 0; i < 2; ++i) {
    CAPTURE(i);
    send_all(fd, "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const std::string r = receive(fd, 3s, [](const std::string& s) { return has_complete_response(s); });
    CHECK(r.rfind("HTTP/1.0 200 ", 0) == 0);
    CHECK(lower(head_of(r)).find("connection: keep-alive") != std::string::npos);
    CHECK(body_of(r) == "hello");
  }
  ::close(fd);
}

TEST_CASE("client: a keep-alive connection serves its next request at once, after a pause, and once parked") {
  GatewayUnderTest g;
  g.gw->route(ok_handler_route());
  const auto port = g.start();
  const int fd = connect_loopback(port);
  const auto one = [fd] {
    return receive(fd, 3s, [](const std::string& s) { return has_complete_response(s); });
  };
  constexpr std::string_view kGet = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  send_all(fd, kGet);
  CHECK(status_of(one()) == 200);
  send_all(fd, kGet);  // at once: the read waiting right after the response takes it
  CHECK(status_of(one()) == 200);
  // Past the worker's sweep (1-1.5 s idle): the connection has given its buffer back and parked.
  std::this_thread::sleep_for(1700ms);
  send_all(fd, "GET / HTTP/1.1\r\n");  // a head in two pieces
  std::this_thread::sleep_for(50ms);
  send_all(fd, "Host: a\r\n\r\n");
  const std::string third = one();
  CHECK(status_of(third) == 200);
  CHECK(body_of(third) == "here");
  // Two pipelined requests in one write, right after: both answered, in order.
  send_all(fd, std::string(kGet) + std::string(kGet));
  const std::string both = receive(fd, 3s, [](const std::string& s) {
    std::size_t n = 0;
    for (std::size_t at = s.find("here"); at != std::string::npos; at = s.find("here", at + 1)) ++n;
    return n == 2;
  });
  CHECK(status_of(both) == 200);
  CHECK(both.find("here") != both.rfind("here"));
  ::close(fd);
}

TEST_CASE("client: many keep-alive connections waiting at once are all served at once, after a pause and once parked") {
  // More than a worker lets wait inside their coroutine (64): the rest wait without it.
  GatewayUnderTest g;
  g.gw->route(ok_handler_route());
  const auto port = g.start();
  std::vector<int> fds;
  for (int i = 0; i < 80; ++i) fds.push_back(connect_loopback(port));
  const auto round = [&fds](const char* when) {
    CAPTURE(when);
    for (int fd : fds) REQUIRE(send_all(fd, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    int ok = 0;
    for (int fd : fds) {
      const std::string r = receive(fd, 3s, [](const std::string& s) { return has_complete_response(s); });
      ok += status_of(r) == 200 && body_of(r) == "here";
    }
    CHECK(ok == 80);
  };
  round("first request");
  round("at once");
  std::this_thread::sleep_for(1700ms);  // past the worker's sweep: parked
  round("once parked");
  for (int fd : fds) ::close(fd);
}

TEST_CASE("client: a request cut off or malformed on one connection does not disturb the next connection") {
  // One worker: the next connection's request is parsed by the parser the broken one used.
  GatewayUnderTest g;
  g.gw->route(ok_handler_route());
  const auto port = g.start();
  const std::string_view broken[] = {
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly part of the body",  // cut off in the body
      "GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n",                                    // malformed field
      "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",             // malformed chunk
  };
  for (std::string_view bytes : broken) {
    CAPTURE(bytes);
    const int fd = connect_loopback(port);
    send_all(fd, bytes);
    (void)receive(fd, 500ms, [](const std::string& s) { return has_complete_response(s); });
    ::close(fd);
    const std::string next = exchange_raw(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 3s);
    CHECK(status_of(next) == 200);
    CHECK(body_of(next) == "here");
  }
}
