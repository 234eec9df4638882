// The data path end to end on loopback: cpp-httplib as the service, raw sockets as the client.
#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "integration/fixture.hpp"
#include "support/httplib_server.hpp"
#include "support/raw_http.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

namespace {

// A service that records what reached it.
struct Service {
  Service() {
    server.Get(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) { record(req, res); });
    server.Post(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) { record(req, res); });
    server.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(1500ms);
      res.set_content("late", "text/plain");
    });
    port = runner.start(server);
  }
  void record(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard l(mu);
    ++hits;
    last = req;
    res.set_header("X-Upstream", "yes");
    res.set_content("path=" + req.path + " body=" + std::to_string(req.body.size()), "text/plain");
  }
  httplib::Request last_request() {
    std::lock_guard l(mu);
    return last;
  }
  httplib::Server server;
  unsigned short port = 0;
  std::mutex mu;
  int hits = 0;
  httplib::Request last;
  ServerThread runner;  // last: stops the server before the members its handlers use
};

}  // namespace

TEST_CASE("a request is forwarded with forwarding headers and without hop-by-hop fields") {
  Service svc;
  GatewayUnderTest g;
  g.gw->route({.name = "svc", .path = "/", .origin = upstream_at(svc.port)});
  const auto port = g.start();

  const std::string r = exchange_raw(port,
      "GET /hello?x=1 HTTP/1.1\r\nHost: example.test\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\n"
      "X-Forwarded-For: 6.6.6.6\r\nKeep-Alive: timeout=5\r\n\r\n");
  CHECK(status_of(r) == 200);
  CHECK(r.find("path=/hello") != std::string::npos);
  CHECK(r.find("x-request-id: ") != std::string::npos);
  CHECK(r.find("X-Upstream: yes") != std::string::npos);
  const auto seen = svc.last_request();
  CHECK_FALSE(seen.has_header("X-Secret"));
  CHECK_FALSE(seen.has_header("Keep-Alive"));
  CHECK(seen.get_header_value("X-Forwarded-For") == "127.0.0.1");  // the untrusted value is replaced
  CHECK(seen.get_header_value("X-Forwarded-Proto") == "http");
  CHECK(seen.get_header_value("X-Forwarded-Host") == "example.test");
  CHECK(seen.get_header_value("Forwarded") == "for=127.0.0.1;host=\"example.test\";proto=http");
  CHECK(seen.get_header_value("x-request-id").size() == 32);
  CHECK(seen.get_param_value("x") == "1");
}

TEST_CASE("trusted proxies keep their X-Forwarded-For chain and request id") {
  Service svc;
  GatewayUnderTest g(GatewayOptions{.trusted_proxies = {"127.0.0.0/8"}});
  g.gw->route({.path = "/", .origin = upstream_at(svc.port)});
  const auto port = g.start();
  const std::string r = exchange_raw(port,
      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.9\r\nX-Request-Id: abc-123\r\nConnection: close\r\n\r\n");
  CHECK(status_of(r) == 200);
  CHECK(r.find("x-request-id: abc-123") != std::string::npos);
  const auto seen = svc.last_request();
  CHECK(seen.get_header_value("X-Forwarded-For") == "203.0.113.9, 127.0.0.1");
  CHECK(seen.get_header_value("x-request-id") == "abc-123");
}

TEST_CASE("keep-alive and pipelined requests are answered in order on one connection") {
  Service svc;
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(svc.port)});
  const auto port = g.start();
  const int fd = connect_loopback(port);
  send_all(fd, "GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\n"
               "POST /three HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
  const std::string r = receive(fd, 5s, [](const std::string& s) { return s.find("path=/three body=5") != std::string::npos; });
  ::close(fd);
  const auto one = r.find("path=/one"), two = r.find("path=/two"), three = r.find("path=/three body=5");
  REQUIRE(one != std::string::npos);
  REQUIRE(two != std::string::npos);
  REQUIRE(three != std::string::npos);
  CHECK(one < two);
  CHECK(two < three);
}

TEST_CASE("chunked request bodies are de-chunked, re-framed and forwarded whole") {
  Service svc;
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(svc.port)});
  const auto port = g.start();
  const std::string r = exchange_raw(port,
      "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  CHECK(status_of(r) == 200);
  CHECK(r.find("body=11") != std::string::npos);
  CHECK(svc.last_request().body == "hello world");
}

TEST_CASE("routing: 404 and 405 come from the gateway with a JSON body and a request id") {
  Service svc;
  GatewayUnderTest g;
  g.gw->route({.path = "/api", .methods = {"GET"}, .origin = upstream_at(svc.port)});
  g.gw->route({.path = "/local", .prefix = false,
               .origin = [](Exchange&) { return Flow::respond(Response(Status::ok, "here")); }});
  const auto port = g.start();
  std::string r = exchange_raw(port, "GET /apix HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  CHECK(status_of(r) == 404);
  CHECK(r.find("\"request_id\":\"") != std::string::npos);
  CHECK(r.find("application/json") != std::string::npos);
  r = exchange_raw(port, "DELETE /api/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  CHECK(status_of(r) == 405);
  r = exchange_raw(port, "GET /local HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  CHECK(status_of(r) == 200);
  CHECK(r.find("here") != std::string::npos);
  CHECK(svc.hits == 0);
}

TEST_CASE("hostile requests are refused and never reach the upstream") {
  Service svc;
  GatewayUnderTest g(GatewayOptions{.limits = {.max_uri_bytes = 1024, .max_header_bytes = 4096,
                                               .max_header_count = 20, .max_body_bytes = 1000}});
  g.gw->route({.path = "/", .origin = upstream_at(svc.port)});
  const auto port = g.start();
  struct Case {
    const char* name;
    std::string bytes;
    int status;
  };
  const Case cases[] = {
      {"CL with TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"duplicate CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n", 400},
      {"bare CR", "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\rtwo\r\n\r\n", 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A : one\r\n\r\n", 400},
      {"no host", "GET / HTTP/1.1\r\n\r\n", 400},
      {"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"long uri", "GET /" + std::string(2000, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
      {"big header", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(5000, 'b') + "\r\n\r\n", 431},
      {"many headers", [] { std::string s = "GET / HTTP/1.1\r\nHost: a\r\n"; for (int i = 0; i < 30; ++i) s += "X-" + std::to_string(i) + ": v\r\n"; return s + "\r\n"; }(), 431},
      {"big body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'x'), 413},
      {"bad version", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
      {"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400},
      {"TE not chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
      {"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405},
      {"bad expect", "GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", 417},
  };
  for (const auto& c : cases) {
    const std::string name = c.name;
    CAPTURE(name);
    const std::string r = exchange_raw(port, c.bytes, 3s);
    CHECK(status_of(r) == c.status);
    CHECK(r.find("Connection: close") != std::string::npos);
  }
  CHECK(svc.hits == 0);
}

TEST_CASE("an HTTP/1.0 request without Host reaches the upstream with one") {
  Service svc;
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(svc.port)});
  const auto port = g.start();
  const std::string r = exchange_raw(port, "GET /old HTTP/1.0\r\n\r\n");
  CHECK(status_of(r) == 200);
  CHECK(r.rfind("HTTP/1.0 200", 0) == 0);
  CHECK(svc.last_request().get_header_value("Host") == "127.0.0.1:" + std::to_string(svc.port));
}

TEST_CASE("an Upgrade request is answered as a plain request and the connection then closes") {
  Service svc;
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(svc.port)});
  const auto port = g.start();
  const int fd = connect_loopback(port);
  send_all(fd, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
               "GET /after HTTP/1.1\r\nHost: a\r\n\r\n");
  const std::string r = receive(fd, 3s);
  ::close(fd);
  CHECK(status_of(r) == 200);
  CHECK(r.find("path=/ws") != std::string::npos);
  CHECK(r.find("path=/after") == std::string::npos);  // nothing after an upgrade is served
  CHECK(r.find("Connection: close") != std::string::npos);
  CHECK_FALSE(svc.last_request().has_header("Upgrade"));
}

TEST_CASE("requests refused before routing still reach the access log with their status") {
  char path[] = "/tmp/gatehouse-log-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::close(fd);
  {
    auto log = std::make_shared<AccessLog>(AccessLogOptions{.path = path});
    GatewayUnderTest g(GatewayOptions{.limits = {.max_uri_bytes = 64}});
    g.gw->use(log);
    g.gw->route({.path = "/", .origin = [](Exchange&) { return Flow::respond(Response(Status::ok, "ok")); }});
    const auto port = g.start();
    const std::string r = exchange_raw(port, "GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(status_of(r) == 414);
    CHECK(r.find("x-request-id: ") != std::string::npos);
    log->flush();
  }
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  CHECK(line.find("\"status\":414") != std::string::npos);
  ::unlink(path);
}
