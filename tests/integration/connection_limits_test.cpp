// Connection-level protection with real sockets: a listener's max_connections across two workers,
// max_connections_per_client per source address, what a refused client sees, the metric and the
// security event.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "gatehouse/testing.hpp"
#include "integration/fixture.hpp"
#include "support/raw_http.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

namespace {

// A connection to 127.0.0.1:port from `source` (any 127.0.0.0/8 address is this host).
int connect_from(const char* source, unsigned short port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, source, &local.sin_addr);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
  return fd;
}

// One keep-alive request on an open connection: the status, or 0 when the gateway closed it.
int ask(int fd) {
  if (!send_all(fd, "GET / HTTP/1.1\r\nHost: t\r\n\r\n")) return 0;
  return status_of(receive(fd, 3s, [](const std::string& r) { return has_complete_response(r); }));
}

struct Connections {
  std::vector<int> fds;
  ~Connections() {
    for (int fd : fds) ::close(fd);
  }
  // Opens one and gives the gateway time to accept it (and to refuse it).
  int open(const char* source, unsigned short port) {
    fds.push_back(connect_from(source, port));
    std::this_thread::sleep_for(50ms);
    return fds.back();
  }
};

std::string scrape(Gateway& gw) { return gw.metrics()->render_prometheus(); }

}  // namespace

TEST_CASE("connection limits: max_connections holds across workers; over it, closed before any byte") {
  testing::EventRecorder recorder;
  Gateway gw(GatewayOptions{.workers = 2, .security_events = recorder.security_events()});
  gw.listen({.address = "127.0.0.1", .port = 0, .name = "public", .max_connections = 2});
  gw.route({.path = "/", .origin = [](Exchange&) { return Flow::respond(Status::ok, "ok"); }});
  gw.start();
  const auto port = gw.local_endpoints().at(0).port();

  Connections c;
  const int first = c.open("127.0.0.1", port);
  const int second = c.open("127.0.0.1", port);
  const int third = c.open("127.0.0.1", port);
  const int fourth = c.open("127.0.0.1", port);
  CHECK(ask(first) == 200);
  CHECK(ask(second) == 200);
  CHECK(ask(first) == 200);  // the admitted ones keep working
  for (int refused : {third, fourth}) {
    const UntilClose r = read_until_close(refused, 2s);
    CHECK(r.closed);
    CHECK(r.bytes.empty());
  }
  // A place frees up when a connection ends.
  ::shutdown(first, SHUT_RDWR);
  std::this_thread::sleep_for(100ms);
  const int fifth = c.open("127.0.0.1", port);
  CHECK(ask(fifth) == 200);

  const std::string text = scrape(gw);
  CHECK(text.find("gatehouse_downstream_connections_refused_total{listener=\"public\",reason=\"max_connections\"} 2") !=
        std::string::npos);
  gw.stop();
  gw.wait();
  const auto events = recorder.events();
  REQUIRE(events.size() == 2);
  for (const auto& e : events) {
    CHECK(e.kind == SecurityEventKind::rate_limited);
    CHECK(e.action == "connection-limit-exceeded");
    CHECK(e.rule_id == "max_connections");
    REQUIRE(e.client_ip);
    CHECK(e.client_ip->to_string() == "127.0.0.1");
  }
}

TEST_CASE("connection limits: max_connections_per_client counts each client address on its own") {
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = [](Exchange&) { return Flow::respond(Status::ok, "ok"); }});
  g.gw->listen({.address = "127.0.0.1", .port = 0, .name = "edge", .max_connections_per_client = 2});
  g.gw->start();
  const auto port = g.gw->local_endpoints().at(0).port();

  Connections c;
  const int a1 = c.open("127.0.0.1", port);
  const int a2 = c.open("127.0.0.1", port);
  const int a3 = c.open("127.0.0.1", port);
  const int b1 = c.open("127.0.0.2", port);  // another client
  CHECK(ask(a1) == 200);
  CHECK(ask(a2) == 200);
  CHECK(ask(a3) == 0);
  CHECK(ask(b1) == 200);
  ::close(a1);
  c.fds.erase(c.fds.begin());
  std::this_thread::sleep_for(100ms);
  CHECK(ask(c.open("127.0.0.1", port)) == 200);
  CHECK(scrape(*g.gw).find("{listener=\"edge\",reason=\"max_connections_per_client\"} 1") != std::string::npos);
}
