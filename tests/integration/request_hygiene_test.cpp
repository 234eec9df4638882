// Request hygiene end to end, tried as an attacker would: hostile requests on a raw socket to a
// gateway in front of a recording upstream. What a user relies on: a refused request never reaches
// the service, and a path reaches routing, the middleware and the service in one canonical
// spelling, so a rule on /admin cannot be walked around.
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include <gatehouse/testing.hpp>

#include "integration/fixture.hpp"
#include "support/raw_http.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

namespace {

// An upstream that records every request head it receives and answers each with 200 "ok".
class RecordingUpstream {
 public:
  RecordingUpstream()
      : server_([this](int fd) {
          std::string buf;
          while (auto head = read_head(fd, buf, 3s)) {
            {
              std::lock_guard lk(mu_);
              heads_.push_back(*head);
            }
            if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) return;
          }
        }) {}
  unsigned short port() const noexcept { return server_.port(); }
  std::vector<std::string> heads() const {
    std::lock_guard lk(mu_);
    return heads_;
  }
  /// The request line of the only request received ("" when none, or several).
  std::string only_request_line() const {
    const auto h = heads();
    if (h.size() != 1) return "";
    return h[0].substr(0, h[0].find("\r\n"));
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> heads_;
  RawServer server_;  // last: stops before the members its handler uses
};

// Refuses every request that is not marked as allowed: the rule a bypass would try to avoid.
class AdminOnly final : public Middleware {
 public:
  Flow on_request(Exchange& ex) const override {
    if (!ex.request().headers().contains("x-admin")) return Flow::respond(Status::forbidden);
    return Flow::next();
  }
};

// A gateway with /admin guarded by AdminOnly and everything else open, both to `up`.
struct Guarded {
  explicit Guarded(const RecordingUpstream& up, PathPolicy policy = {}, GatewayOptions options = {}) : g(options) {
    g.gw->route({.name = "admin", .path = "/admin", .middleware = {std::make_shared<AdminOnly>()},
                 .origin = upstream_at(up.port())});
    g.gw->route({.name = "public", .path = "/", .origin = upstream_at(up.port())});
    g.gw->listen({.address = "127.0.0.1", .port = 0, .path_policy = policy});
    g.gw->start();
    port = g.gw->local_endpoints().at(0).port();
  }
  std::string get(std::string_view target, std::string_view extra = {}) const {
    return exchange_raw(port, "GET " + std::string(target) + " HTTP/1.1\r\nHost: a.test\r\n" + std::string(extra) +
                                  "Connection: close\r\n\r\n",
                        3s);
  }
  GatewayUnderTest g;
  unsigned short port = 0;
};

}  // namespace

TEST_CASE("hygiene: chunk data followed by two other bytes than CRLF is refused before the upstream") {
  RecordingUpstream up;
  Guarded gw(up);
  const std::string r = exchange_raw(
      gw.port, "POST /p HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n", 3s);
  CHECK(status_of(r) == 400);
  CHECK(up.heads().empty());
}

TEST_CASE("hygiene: a header line with an empty field name is refused") {
  RecordingUpstream up;
  Guarded gw(up);
  CHECK(status_of(exchange_raw(gw.port, "GET /p HTTP/1.1\r\nHost: a.test\r\n: value\r\n\r\n", 3s)) == 400);
  CHECK(status_of(exchange_raw(gw.port, "GET /p HTTP/1.1\r\nHost: a.test\r\n:\r\n\r\n", 3s)) == 400);
  CHECK(up.heads().empty());
}

TEST_CASE("hygiene: Host values that are not host[:port] are refused") {
  RecordingUpstream up;
  Guarded gw(up);
  const char* hosts[] = {"a.test, b.test", "a.test b.test", "a.test/admin", "user@a.test", "a.test:", "a.test:99999",
                         "", "[::1", "a..test", "a.test.", "%61.test"};
  for (const char* h : hosts) {
    CAPTURE(h);
    const std::string r =
        exchange_raw(gw.port, "GET /p HTTP/1.1\r\nHost: " + std::string(h) + "\r\nConnection: close\r\n\r\n", 3s);
    CHECK(status_of(r) == 400);
  }
  const char* absolute[] = {"http:///p", "http://:80/p", "http://user@a.test/p", "http://a.test,b.test/p",
                            "http://@/p", "http://a.test#x/p"};
  for (const char* t : absolute) {
    CAPTURE(t);
    CHECK(status_of(gw.get(t)) == 400);
  }
  CHECK(up.heads().empty());
  // Valid forms still pass: a port, an IPv6 literal, trailing whitespace (dropped).
  CHECK(status_of(exchange_raw(gw.port, "GET /p HTTP/1.1\r\nHost: a.test:8080\r\nConnection: close\r\n\r\n", 3s)) == 200);
  CHECK(status_of(exchange_raw(gw.port, "GET /p HTTP/1.1\r\nHost: [::1]:80\r\nConnection: close\r\n\r\n", 3s)) == 200);
  CHECK(status_of(exchange_raw(gw.port, "GET /p HTTP/1.1\r\nHost: a.test \r\nConnection: close\r\n\r\n", 3s)) == 200);
  const auto heads = up.heads();
  REQUIRE(heads.size() == 3);
  CHECK(lower(heads[2]).find("host: a.test\r\n") != std::string::npos);
}

TEST_CASE("hygiene: the absolute-form authority replaces Host, for routing and for the upstream") {
  RecordingUpstream up;
  Guarded gw(up);
  CHECK(status_of(gw.get("http://b.test/p?q=1")) == 200);
  REQUIRE(up.heads().size() == 1);
  CHECK(up.only_request_line() == "GET /p?q=1 HTTP/1.1");
  CHECK(lower(up.heads()[0]).find("host: b.test\r\n") != std::string::npos);
  // The path of an absolute-form target is canonical too: no way around /admin through it.
  CHECK(status_of(gw.get("http://b.test/x/../admin")) == 403);
}

TEST_CASE("hygiene: a POST, PUT or PATCH without content reaches the upstream with Content-Length: 0") {
  RecordingUpstream up;
  Guarded gw(up);
  // RFC 9110 8.6: some origins answer 411 to a POST without a length. A GET gets no framing field.
  const std::string requests[] = {
      "POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
      "PUT /p HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
      "PATCH /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
      "GET /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
  };
  for (const std::string& r : requests) CHECK(status_of(exchange_raw(gw.port, r, 3s)) == 200);
  const auto heads = up.heads();
  REQUIRE(heads.size() == 4);
  for (int i = 0; i < 3; ++i) {
    CAPTURE(heads[i]);
    const std::string h = lower(heads[i]);
    CHECK(h.find("\r\ncontent-length: 0\r\n") != std::string::npos);
    CHECK(h.find("content-length") == h.rfind("content-length"));  // exactly one
    CHECK(h.find("transfer-encoding") == std::string::npos);
  }
  CHECK(lower(heads[3]).find("content-length") == std::string::npos);
}

TEST_CASE("hygiene: dot-segments, escapes and repeated slashes cannot walk around a rule on /admin") {
  RecordingUpstream up;
  Guarded gw(up);
  const char* disguises[] = {"/public/../admin",       "/public/%2e%2e/admin", "/public/%2E%2e/admin",
                             "/public/.%2E/admin/x",   "/./admin",             "//admin",
                             "/public/..//admin",      "/%61dmin",             "/public/../../../admin?x=/..",
                             "/admin/./",              "/public/%2e/../admin"};
  for (const char* t : disguises) {
    CAPTURE(t);
    CHECK(status_of(gw.get(t)) == 403);  // the admin rule saw the request
  }
  CHECK(up.heads().empty());
  // With the header the rule lets it through, and the upstream gets the canonical path.
  CHECK(status_of(gw.get("/public/%2e%2E/admin/%7eu/a%2a?x=/../y", "X-Admin: 1\r\n")) == 200);
  CHECK(up.only_request_line() == "GET /admin/~u/a%2A?x=/../y HTTP/1.1");
}

TEST_CASE("hygiene: backslashes, encoded slashes, NUL, fragments and disguised dot-segments are refused") {
  RecordingUpstream up;
  Guarded gw(up);
  const char* refused[] = {"/public\\..\\admin", "/public/%5c../admin", "/admin%2fx", "/public/..%2Fadmin",
                           "/a%00b",            "/p#frag",             "/public/..;/admin", "/public/.;x/admin",
                           "/a%zz",             "/a%2"};
  for (const char* t : refused) {
    CAPTURE(t);
    CHECK(status_of(gw.get(t)) == 400);
  }
  CHECK(up.heads().empty());
}

TEST_CASE("hygiene: the listener's path policy can keep escapes or read them as slashes") {
  RecordingUpstream up;
  SUBCASE("as_slash: a backslash is a separator, then dot-segments resolve") {
    Guarded gw(up, {.encoded_slash = PathEscapeAction::as_slash, .backslash = PathEscapeAction::as_slash});
    CHECK(status_of(gw.get("/public\\..\\admin")) == 403);
    CHECK(status_of(gw.get("/public/..%2Fadmin")) == 403);
    CHECK(status_of(gw.get("/files%2Fa%5Cb")) == 200);
    CHECK(up.only_request_line() == "GET /files/a/b HTTP/1.1");
  }
  SUBCASE("keep_encoded: %2F stays data inside one segment") {
    Guarded gw(up, {.merge_slashes = false, .encoded_slash = PathEscapeAction::keep_encoded});
    CHECK(status_of(gw.get("/repo/group%2fproject//x")) == 200);
    CHECK(up.only_request_line() == "GET /repo/group%2Fproject//x HTTP/1.1");
    CHECK(status_of(gw.get("/public/..%2Fadmin")) == 400);  // still never a hidden dot-segment
  }
}

TEST_CASE("hygiene: an HTTP/0.9 request line gets a 400 and the connection is closed at once") {
  RecordingUpstream up;
  Guarded gw(up);
  const int fd = connect_loopback(gw.port);
  REQUIRE(send_all(fd, "GET /\r\n"));
  const UntilClose r = read_until_close(fd, 3s);
  ::close(fd);
  CHECK(r.closed);
  CHECK(r.elapsed < 2s);
  CHECK(status_of(r.bytes) == 400);
  CHECK(up.heads().empty());
}

TEST_CASE("hygiene: X-Real-IP from an untrusted client is replaced, like X-Forwarded-For") {
  RecordingUpstream up;
  Guarded gw(up);
  CHECK(status_of(gw.get("/p", "X-Real-IP: 6.6.6.6\r\nX-Real-IP: 7.7.7.7\r\n")) == 200);
  REQUIRE(up.heads().size() == 1);
  const std::string head = lower(up.heads()[0]);
  CHECK(head.find("6.6.6.6") == std::string::npos);
  CHECK(head.find("7.7.7.7") == std::string::npos);
  CHECK(head.find("x-real-ip: 127.0.0.1\r\n") != std::string::npos);
}

TEST_CASE("hygiene: a trusted proxy's X-Real-IP is kept") {
  RecordingUpstream up;
  Guarded gw(up, {}, {.trusted_proxies = {"127.0.0.1/32"}});
  CHECK(status_of(gw.get("/p", "X-Real-IP: 203.0.113.9\r\n")) == 200);
  REQUIRE(up.heads().size() == 1);
  CHECK(lower(up.heads()[0]).find("x-real-ip: 203.0.113.9\r\n") != std::string::npos);
}

TEST_CASE("hygiene: every refusal is a protocol_violation event and a counted metric") {
  RecordingUpstream up;
  testing::EventRecorder recorder;
  Guarded gw(up, {}, {.security_events = recorder.security_events()});
  CHECK(status_of(gw.get("/public/..;/admin")) == 400);
  CHECK(status_of(exchange_raw(gw.port, "GET /p HTTP/1.1\r\nHost: a, b\r\n\r\n", 3s)) == 400);
  CHECK(status_of(exchange_raw(gw.port, "GET /p HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", 3s)) == 400);
  const auto events = recorder.events();
  REQUIRE(events.size() == 3);
  for (const auto& e : events) CHECK(e.kind == SecurityEventKind::protocol_violation);
  CHECK(events[0].action == "http-path-traversal-suspected");
  CHECK(events[1].reason == "invalid Host header");
  CHECK(events[2].action == "http-request-smuggling-suspected");
  const std::string text = gw.g.gw->metrics()->render_prometheus();
  CHECK(text.find("gatehouse_protocol_violations_total{reason=\"path\"} 1") != std::string::npos);
  CHECK(text.find("gatehouse_protocol_violations_total{reason=\"host\"} 1") != std::string::npos);
  CHECK(text.find("gatehouse_protocol_violations_total{reason=\"smuggling\"} 1") != std::string::npos);
}

TEST_CASE("hygiene: CONNECT, asterisk-form and versions other than 1.x never reach the upstream") {
  RecordingUpstream up;
  Guarded gw(up);
  CHECK(status_of(exchange_raw(gw.port, "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n", 3s)) == 405);
  CHECK(status_of(exchange_raw(gw.port, "OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n", 3s)) == 501);
  CHECK(status_of(exchange_raw(gw.port, "GET * HTTP/1.1\r\nHost: a.test\r\n\r\n", 3s)) == 400);
  CHECK(status_of(exchange_raw(gw.port, "GET /p HTTP/2.0\r\nHost: a.test\r\n\r\n", 3s)) == 505);
  CHECK(status_of(exchange_raw(gw.port, "GET /p HTTP/1.2\r\nHost: a.test\r\n\r\n", 3s)) == 400);
  CHECK(status_of(exchange_raw(gw.port, "GET /p HTTP/1.1\nHost: a.test\n\n", 3s)) == 400);
  CHECK(up.heads().empty());
}
