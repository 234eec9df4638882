// Automatic bans across gateway instances sharing one real redis-server: a client banned on one
// instance is refused by another within a second, an instance started later loads the ban, a
// lift reaches all, with Redis killed local bans keep working and nothing hangs, and a ban
// published while an instance was cut off reaches it when it is back. Clients
// are told apart by their source address (127.0.0.2, .3, ... are all loopback on Linux).
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "integration/fixture.hpp"
#include "support/raw_http.hpp"
#include "support/redis_server.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

namespace {

// Sends `request` from `source` to 127.0.0.1:port; the status of the answer, 0 when the
// connection closed without one (refused at accept).
int send_from(const char* source, unsigned short port, std::string_view request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = ::inet_addr(source);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    ::close(fd);
    return -1;
  }
  send_all(fd, request);
  const std::string answer = receive(fd, 3000ms, has_complete_response);
  ::close(fd);
  return status_of(answer);
}

int get_from(const char* source, unsigned short port) {
  return send_from(source, port, "GET / HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
}

// Duplicate Host: a protocol violation (weight 4), answered 400.
int misbehave_from(const char* source, unsigned short port) {
  return send_from(source, port, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
}

template <class F>
bool within(std::chrono::milliseconds limit, F f) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return f();
}

// One gateway instance as a separate process would have it: its own Redis client, ban list,
// event stream and gateway.
struct Instance {
  std::shared_ptr<RedisClient> redis;
  std::shared_ptr<BanList> bans;
  std::shared_ptr<SecurityEvents> events;
  std::unique_ptr<GatewayUnderTest> gw;
  unsigned short port = 0;

  Instance(const std::string& redis_address, const std::string& name, const std::string& user = {},
           const std::string& password = {}) {
    RedisOptions ro;
    ro.address = redis_address;
    ro.username = user;
    ro.password = password;
    ro.reconnect_min = 20ms;
    ro.reconnect_max = 200ms;
    redis = RedisClient::create(ro);
    redis->wait_connected(2s);
    BanOptions bo;
    bo.threshold = 7;  // two protocol violations (4 each, decaying a little in between)
    bo.redis = redis;
    bo.instance = name;
    bo.redis_timeout = 300ms;
    bans = BanList::create(bo);
    events = std::make_shared<SecurityEvents>(SecurityEventsOptions{.sinks = {bans->sink()}});
    gw = std::make_unique<GatewayUnderTest>(GatewayOptions{.workers = 1, .security_events = events, .bans = bans});
    gw->gw->route({.name = "hello", .path = "/", .origin = [](Exchange&) { return Flow::respond(Status::ok, "hi"); }});
    port = gw->start();
  }
};

// Both subscribed to the ban channel (PUBSUB NUMSUB says how many listen).
bool listeners(const RedisServer& server, int n) {
  return within(3s, [&] { return server.cli("PUBSUB NUMSUB gatehouse:bans:events").ends_with(std::to_string(n)); });
}

}  // namespace

TEST_CASE("bans: shared through Redis across instances, loaded by a late one, local when Redis is gone") {
  RedisServer server;
  Instance a(server.address(), "a"), b(server.address(), "b");
  REQUIRE(listeners(server, 2));
  CHECK(get_from("127.0.0.2", b.port) == 200);

  // Two protocol violations on A reach the threshold.
  CHECK(misbehave_from("127.0.0.2", a.port) == 400);
  CHECK(misbehave_from("127.0.0.2", a.port) == 400);
  REQUIRE(within(2s, [&] { return a.bans->banned(asio::ip::make_address("127.0.0.2")); }));
  const auto banned_at = std::chrono::steady_clock::now();
  REQUIRE(within(1s, [&] { return b.bans->banned(asio::ip::make_address("127.0.0.2")); }));
  CHECK(std::chrono::steady_clock::now() - banned_at < 1s);
  CHECK(get_from("127.0.0.2", b.port) == 0);  // closed at accept
  CHECK(get_from("127.0.0.2", a.port) == 0);
  CHECK(get_from("127.0.0.3", b.port) == 200);  // others are served
  CHECK(a.bans->list().at(0).source == "score");
  CHECK(b.bans->list().at(0).source == "shared");
  CHECK(b.bans->stats().hits_at_accept >= 1);

  // An instance started later loads the bans in force.
  Instance c(server.address(), "c");
  REQUIRE(within(2s, [&] { return c.bans->banned(asio::ip::make_address("127.0.0.2")); }));
  CHECK(get_from("127.0.0.2", c.port) == 0);

  // A lift on one instance reaches all.
  REQUIRE(c.bans->lift(asio::ip::make_address("127.0.0.2")));
  CHECK(within(1s, [&] {
    return !a.bans->banned(asio::ip::make_address("127.0.0.2")) && !b.bans->banned(asio::ip::make_address("127.0.0.2"));
  }));
  CHECK(get_from("127.0.0.2", a.port) == 200);

  // Redis gone: bans still work locally, and nothing waits for Redis.
  server.stop();
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(a.bans->ban(asio::ip::make_address("127.0.0.4"), 60s, "by hand"));
  CHECK(std::chrono::steady_clock::now() - t0 < 50ms);
  CHECK(get_from("127.0.0.4", a.port) == 0);
  CHECK(misbehave_from("127.0.0.5", a.port) == 400);
  CHECK(misbehave_from("127.0.0.5", a.port) == 400);
  CHECK(within(2s, [&] { return a.bans->banned(asio::ip::make_address("127.0.0.5")); }));
  CHECK(get_from("127.0.0.3", a.port) == 200);
  CHECK(get_from("127.0.0.4", b.port) == 200);  // not shared while Redis is away...

  // ...and shared once it is back: A stores what it banned meanwhile.
  server.start();
  CHECK(within(5s, [&] { return b.bans->banned(asio::ip::make_address("127.0.0.4")); }));
}

TEST_CASE("bans: the admin API lists, adds and lifts bans; per-request 403 behind a trusted proxy") {
  auto bans = BanList::create({});
  GatewayUnderTest gw(GatewayOptions{.workers = 1, .trusted_proxies = {"127.0.0.1/32"}, .bans = bans});
  gw.gw->route({.name = "hello", .path = "/", .origin = [](Exchange&) { return Flow::respond(Status::ok, "hi"); }});
  gw.gw->admin({.port = 0});
  const auto port = gw.start();
  const auto admin = gw.gw->admin_endpoint().value().port();

  auto call = [&](const std::string& method, const std::string& target) {
    return exchange_raw(admin, method + " " + target + " HTTP/1.1\r\nHost: admin\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  };
  auto r = call("POST", "/bans?ip=198.51.100.20&duration_s=120&reason=abuse+report");
  CHECK(status_of(r) == 201);
  r = call("GET", "/bans");
  CHECK(status_of(r) == 200);
  CHECK(body_of(r).find("\"ip\": \"198.51.100.20\"") != std::string::npos);
  CHECK(body_of(r).find("abuse report") != std::string::npos);
  CHECK(status_of(call("POST", "/bans?ip=not-an-ip")) == 400);
  CHECK(status_of(call("PUT", "/bans")) == 405);

  // The client behind the trusted proxy (127.0.0.1) is refused per request.
  const std::string via_proxy = "GET / HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: 198.51.100.20\r\nConnection: close\r\n\r\n";
  CHECK(status_of(exchange_raw(port, via_proxy)) == 403);
  CHECK(bans->stats().hits_per_request == 1);

  CHECK(status_of(call("DELETE", "/bans/198.51.100.20")) == 200);
  CHECK(status_of(call("DELETE", "/bans/198.51.100.20")) == 404);
  CHECK(status_of(exchange_raw(port, via_proxy)) == 200);
  const std::string metrics = gw.gw->metrics()->render_prometheus();
  CHECK(metrics.find("gatehouse_ban_hits_total{stage=\"request\"} 1") != std::string::npos);
  CHECK(metrics.find("gatehouse_bans_total{source=\"api\"} 1") != std::string::npos);
}

TEST_CASE("bans: a ban published while an instance was cut off from Redis reaches it when it is back") {
  RedisServer server;
  // B logs in as its own ACL user: switching the user off and killing its connections cuts B
  // alone off (A keeps publishing), and B cannot reconnect until the user is on again.
  REQUIRE(server.cli("ACL SETUSER gw-b on '>pw-b' '~*' '&*' '+@all'") == "OK");
  Instance a(server.address(), "a"), b(server.address(), "b", "gw-b", "pw-b");
  REQUIRE(listeners(server, 2));
  const auto resyncs = b.bans->stats().resyncs;
  CHECK(resyncs >= 1);  // the load at start

  REQUIRE(server.cli("ACL SETUSER gw-b off") == "OK");
  server.cli("CLIENT KILL USER gw-b");
  REQUIRE(listeners(server, 1));
  const auto ip = asio::ip::make_address("127.0.0.6");
  REQUIRE(a.bans->ban(ip, 60s, "while B was away"));
  // Stored and published (to A alone): B missed the message.
  REQUIRE(within(2s, [&] { return !server.cli("ZSCORE {gatehouse:bans}:until 127.0.0.6").empty(); }));
  CHECK(!b.bans->banned(ip));

  // Back: B subscribes again and loads the set, so it has the ban without any new message.
  REQUIRE(server.cli("ACL SETUSER gw-b on") == "OK");
  const auto back = std::chrono::steady_clock::now();
  CHECK(within(3s, [&] { return b.bans->banned(ip); }));
  CHECK(std::chrono::steady_clock::now() - back < 3s);
  CHECK(b.bans->stats().resyncs > resyncs);
  CHECK(b.bans->list().at(0).reason == "while B was away");
  CHECK(get_from("127.0.0.6", b.port) == 0);
  CHECK(listeners(server, 2));
}
