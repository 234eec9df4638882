// The admin API on real loopback sockets: every endpoint and its method, the token and mTLS
// checks, readiness during a drain, and that no public listener ever reaches an admin path.
#include <doctest/doctest.h>

#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "gatehouse/config.hpp"
#include "integration/fixture.hpp"
#include "support/raw_http.hpp"
#include "support/test_certs.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

constexpr const char* kToken = "admin-token-0123456789abcdef";
const std::vector<std::string> kAdminPaths = {"/", "/livez", "/readyz", "/metrics", "/config", "/upstreams",
                                              "/drain", "/reload"};

struct Reply {
  int status = 0;
  std::string head;  // lower case
  std::string body;
  json parsed() const { return json::parse(body, nullptr, false); }
};

Reply call(unsigned short port, const std::string& method, const std::string& path, const std::string& extra = {}) {
  const std::string raw = exchange_raw(port, method + " " + path + " HTTP/1.1\r\nHost: admin\r\n" + extra +
                                                 "Content-Length: 0\r\nConnection: close\r\n\r\n",
                                       5s);
  return Reply{status_of(raw), lower(head_of(raw)), body_of(raw)};
}

std::string bearer(const std::string& token) { return "Authorization: Bearer " + token + "\r\n"; }

bool can_connect(unsigned short port) {
  try {
    const int fd = connect_loopback(port);
    ::close(fd);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// A plain upstream: "upstream saw <path>".
RawServer echo_upstream() {
  return RawServer([](int fd) {
    const std::string req = receive(fd, 2s, [](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; });
    const auto sp1 = req.find(' '), sp2 = req.find(' ', sp1 + 1);
    const std::string body = "upstream saw " + req.substr(sp1 + 1, sp2 - sp1 - 1);
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n" + body);
  });
}

// A gateway with a public listener (one route to `upstream_port`) and the admin API on port 0.
struct AdminGateway {
  AdminGateway(unsigned short upstream_port, AdminOptions admin, bool catch_all = false) {
    gw = std::make_unique<Gateway>(GatewayOptions{.workers = 1, .drain_timeout = 5s});
    gw->listen({.address = "127.0.0.1", .port = 0});
    gw->route({.name = "users", .path = catch_all ? "/" : "/users", .origin = upstream_at(upstream_port)});
    admin.port = 0;
    gw->admin(std::move(admin));
    gw->start();
    public_port = gw->local_endpoints().at(0).port();
    admin_port = gw->admin_endpoint().value().port();
  }
  ~AdminGateway() {
    gw->stop();
    gw->wait();
  }
  std::unique_ptr<Gateway> gw;
  unsigned short public_port = 0, admin_port = 0;
};

}  // namespace

TEST_CASE("admin: probes, metrics, configuration and upstreams answer JSON; methods are enforced") {
  RawServer upstream = echo_upstream();
  AdminOptions admin;
  admin.metrics = [] { return std::string("# TYPE gatehouse_up gauge\ngatehouse_up 1\n"); };
  admin.running_config = [] {
    return std::string(R"({ // the running file
      "verifiers": { "idp": { "type": "introspection", "client_secret": "zzz-very-secret" } },
      "listeners": [ { "port": 8080 } ] })");
  };
  AdminGateway g(upstream.port(), admin);

  Reply r = call(g.admin_port, "GET", "/livez");
  CHECK(r.status == 200);
  CHECK(r.head.find("content-type: application/json") != std::string::npos);
  CHECK(r.parsed()["status"] == "alive");

  r = call(g.admin_port, "GET", "/readyz");
  CHECK(r.status == 200);
  CHECK(r.parsed()["ready"] == true);

  r = call(g.admin_port, "GET", "/metrics");
  CHECK(r.status == 200);
  CHECK(r.head.find("content-type: text/plain; version=0.0.4") != std::string::npos);
  CHECK(r.body == "# TYPE gatehouse_up gauge\ngatehouse_up 1\n");

  r = call(g.admin_port, "GET", "/config");
  CHECK(r.status == 200);
  CHECK(r.body.find("zzz-very-secret") == std::string::npos);
  CHECK(r.parsed()["verifiers"]["idp"]["client_secret"] == "[redacted]");
  CHECK(r.parsed()["listeners"][0]["port"] == 8080);

  r = call(g.admin_port, "GET", "/upstreams");
  REQUIRE(r.status == 200);
  const json ups = r.parsed()["upstreams"];
  REQUIRE(ups.size() == 1);
  CHECK(ups[0]["name"] == "svc");
  const std::string ep = "127.0.0.1:" + std::to_string(upstream.port());
  CHECK(ups[0]["endpoints"][0]["endpoint"] == ep);
  CHECK(ups[0]["endpoints"][0]["addresses"][0]["address"] == ep);
  CHECK(ups[0]["endpoints"][0]["addresses"][0]["health"] == "healthy");  // no checks: healthy
  CHECK(ups[0]["endpoints"][0]["addresses"][0]["ejected"] == false);
  CHECK(ups[0]["endpoints"][0]["weight"] == 1);

  r = call(g.admin_port, "HEAD", "/readyz");
  CHECK(r.status == 200);
  CHECK(r.body.empty());

  // Reads take GET (and HEAD), actions POST: anything else is 405 with Allow.
  for (const char* path : {"/livez", "/readyz", "/metrics", "/config", "/upstreams"}) {
    r = call(g.admin_port, "POST", path);
    CHECK_MESSAGE(r.status == 405, path);
    CHECK(r.head.find("allow: get, head") != std::string::npos);
    CHECK(call(g.admin_port, "DELETE", path).status == 405);
  }
  for (const char* path : {"/drain", "/reload"}) {
    r = call(g.admin_port, "GET", path);
    CHECK_MESSAGE(r.status == 405, path);
    CHECK(r.head.find("allow: post") != std::string::npos);
  }
  CHECK(call(g.admin_port, "GET", "/nowhere").status == 404);
  CHECK(call(g.admin_port, "GET", "/livez/x").status == 404);  // exact paths only
  CHECK(call(g.admin_port, "GET", "/").parsed()["endpoints"].size() == 10);  // the 7 above, and GET, POST and DELETE on /bans
}

TEST_CASE("admin: hooks left empty answer 404 (metrics, config) and 501 (reload)") {
  RawServer upstream = echo_upstream();
  AdminGateway g(upstream.port(), AdminOptions{});
  CHECK(call(g.admin_port, "GET", "/metrics").status == 404);
  CHECK(call(g.admin_port, "GET", "/config").status == 404);
  const Reply r = call(g.admin_port, "POST", "/reload");
  CHECK(r.status == 501);
  CHECK(r.parsed()["error"] == "reload is not configured");
}

TEST_CASE("admin: POST /reload reports what changed, or the configuration error (422)") {
  RawServer upstream = echo_upstream();
  std::atomic<int> calls{0};
  AdminOptions admin;
  admin.reload = [&calls]() -> ReloadResult {
    switch (calls++) {
      case 0: return {.ok = true, .changes = {"route \"users\" changed"}};
      case 1: return {.ok = false, .error = "unknown upstream \"userz\"", .error_path = "/routes/0/upstream"};
      default: throw ConfigError("/listeners/0/port", "expected an integer");
    }
  };
  AdminGateway g(upstream.port(), admin);
  Reply r = call(g.admin_port, "POST", "/reload");
  CHECK(r.status == 200);
  CHECK(r.parsed()["applied"] == true);
  CHECK(r.parsed()["changes"][0] == "route \"users\" changed");
  r = call(g.admin_port, "POST", "/reload");
  CHECK(r.status == 422);
  CHECK(r.parsed()["path"] == "/routes/0/upstream");
  r = call(g.admin_port, "POST", "/reload");
  CHECK(r.status == 422);
  CHECK(r.parsed()["path"] == "/listeners/0/port");
  CHECK(r.parsed()["error"] == "expected an integer");
  CHECK(calls == 3);
}

TEST_CASE("admin: no admin path is reachable through a public listener") {
  RawServer upstream = echo_upstream();
  AdminOptions admin;
  admin.running_config = [] { return std::string(R"({"marker": "only-on-the-admin-listener"})"); };
  {
    AdminGateway g(upstream.port(), admin);
    for (const auto& path : kAdminPaths) {
      CHECK_MESSAGE(call(g.public_port, "GET", path).status == 404, path);
      CHECK_MESSAGE(call(g.public_port, "POST", path).status == 404, path);
    }
    CHECK(call(g.admin_port, "GET", "/readyz").status == 200);  // while it is served on its own port
    CHECK(call(g.public_port, "GET", "/users/1").body == "upstream saw /users/1");
  }
  {
    // With a catch-all public route, the admin paths are the application's paths there: they go
    // to its upstream, never to the admin API.
    AdminGateway g(upstream.port(), admin, /*catch_all=*/true);
    for (const auto& path : kAdminPaths) {
      const Reply r = call(g.public_port, "GET", path);
      CHECK_MESSAGE(r.body == "upstream saw " + path, path);
    }
    CHECK(call(g.admin_port, "GET", "/config").body.find("only-on-the-admin-listener") != std::string::npos);
    CHECK(call(g.public_port, "POST", "/drain").status == 200);  // the upstream's answer...
    CHECK(call(g.admin_port, "GET", "/readyz").status == 200);   // ...and the gateway is not draining
  }
}

TEST_CASE("admin: with a token, every request without it is refused (401), paths unknown included") {
  RawServer upstream = echo_upstream();
  AdminOptions admin;
  admin.token = kToken;
  AdminGateway g(upstream.port(), admin);
  for (const auto& path : kAdminPaths) {
    const Reply r = call(g.admin_port, "GET", path);
    CHECK_MESSAGE(r.status == 401, path);
    CHECK(r.head.find("www-authenticate: bearer realm=\"gatehouse-admin\"") != std::string::npos);
  }
  CHECK(call(g.admin_port, "GET", "/nowhere").status == 401);
  CHECK(call(g.admin_port, "GET", "/livez", bearer("admin-token-0123456789abcdeX")).status == 401);
  CHECK(call(g.admin_port, "GET", "/livez", "Authorization: Basic YWRtaW46YWRtaW4=\r\n").status == 401);
  CHECK(call(g.admin_port, "POST", "/drain", bearer("wrong")).status == 401);
  CHECK(call(g.admin_port, "GET", "/readyz").status == 401);
  CHECK(call(g.admin_port, "GET", "/livez", bearer(kToken)).status == 200);
  CHECK(call(g.admin_port, "GET", "/readyz", bearer(kToken)).parsed()["ready"] == true);
  CHECK(call(g.admin_port, "GET", "/nowhere", bearer(kToken)).status == 404);
}

TEST_CASE("admin: mTLS-only admin listener refuses clients without a certificate (curl)") {
  RawServer upstream = echo_upstream();
  TestPki pki("admin CA");
  const auto leaf = pki.issue("localhost", {"localhost"}, {"127.0.0.1"});
  const auto client = pki.issue("operator", {}, {}, /*client=*/true);
  AdminOptions admin;
  admin.tls = ServerTls{.certificates = {leaf}, .client_ca_file = pki.ca_cert};
  AdminGateway g(upstream.port(), admin);
  const std::string p = std::to_string(g.admin_port);
  const std::string base = "timeout 20 curl -sS --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code}' --cacert " +
                           pki.ca_cert + " --resolve localhost:" + p + ":127.0.0.1 ";
  auto r = run_command(base + "--cert " + client.cert_file + " --key " + client.key_file + " https://localhost:" + p +
                       "/readyz");
  CHECK(r.exit_code == 0);
  CHECK(r.output == "200");
  r = run_command(base + "https://localhost:" + p + "/readyz");
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("200") == std::string::npos);
  // Plain HTTP to the TLS port gets nothing either.
  CHECK(call(g.admin_port, "GET", "/readyz").status == 0);
}

TEST_CASE("admin: readiness is 503 during a drain; the admin listener closes after it") {
  std::atomic<bool> release{false};
  std::atomic<int> arrived{0};
  RawServer slow([&](int fd) {
    receive(fd, 2s, [](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; });
    ++arrived;
    for (int i = 0; i < 500 && !release; ++i) std::this_thread::sleep_for(10ms);
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow");
  });
  auto g = std::make_unique<AdminGateway>(slow.port(), AdminOptions{});
  const unsigned short admin_port = g->admin_port, public_port = g->public_port;
  std::string in_flight;
  std::thread client([&] {
    in_flight = exchange_raw(public_port, "GET /users/slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 8s);
  });
  for (int i = 0; i < 300 && arrived == 0; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(arrived == 1);
  CHECK(call(admin_port, "GET", "/readyz").status == 200);

  Reply r = call(admin_port, "POST", "/drain");
  CHECK(r.status == 202);
  CHECK(r.parsed()["draining"] == true);
  r = call(admin_port, "GET", "/readyz");  // at once
  CHECK(r.status == 503);
  CHECK(r.parsed()["status"] == "draining");
  CHECK(call(admin_port, "GET", "/livez").status == 200);
  CHECK(call(admin_port, "POST", "/drain").status == 202);  // again: nothing more to do
  bool public_closed = false;
  for (int i = 0; i < 100 && !public_closed; ++i) {
    public_closed = !can_connect(public_port);
    if (!public_closed) std::this_thread::sleep_for(10ms);
  }
  CHECK(public_closed);
  CHECK(call(admin_port, "GET", "/readyz").status == 503);  // still answering while the request runs

  release = true;
  client.join();
  CHECK(status_of(in_flight) == 200);
  CHECK(body_of(in_flight) == "slow");
  g->gw->wait();
  CHECK_FALSE(can_connect(admin_port));
  g.reset();
}

TEST_CASE("admin: on the host's executor, the host's loop ends once the gateway drained") {
  RawServer upstream = echo_upstream();
  asio::io_context io;
  Gateway gw{io.get_executor()};
  gw.listen({.address = "127.0.0.1", .port = 0});
  gw.route({.path = "/users", .origin = upstream_at(upstream.port())});
  gw.admin({.port = 0});
  gw.start();
  const auto admin_port = gw.admin_endpoint().value().port();
  Reply before, drain;
  std::thread client([&] {
    before = call(admin_port, "GET", "/readyz");
    drain = call(admin_port, "POST", "/drain");
  });
  io.run_for(5s);
  client.join();
  CHECK(before.status == 200);
  CHECK(drain.status == 202);
  CHECK(io.stopped());
  CHECK_FALSE(can_connect(admin_port));
}

TEST_CASE("admin: start refuses an exposed admin listener, a weak token and a taken port") {
  {
    Gateway gw{GatewayOptions{.workers = 1}};
    gw.listen({.address = "127.0.0.1", .port = 0});
    gw.route({.path = "/", .origin = [](Exchange&) { return Flow::respond(Status::ok); }});
    gw.admin({.address = "0.0.0.0", .port = 0});
    CHECK_THROWS_AS(gw.start(), std::invalid_argument);
  }
  {
    Gateway gw{GatewayOptions{.workers = 1}};
    gw.listen({.address = "127.0.0.1", .port = 0});
    gw.route({.path = "/", .origin = [](Exchange&) { return Flow::respond(Status::ok); }});
    gw.admin({.port = 0, .token = "short"});
    CHECK_THROWS_AS(gw.start(), std::invalid_argument);
  }
  RawServer taken([](int) {});
  Gateway gw{GatewayOptions{.workers = 1}};
  gw.listen({.address = "127.0.0.1", .port = 0});
  gw.route({.path = "/", .origin = [](Exchange&) { return Flow::respond(Status::ok); }});
  gw.admin({.port = taken.port()});
  try {
    gw.start();
    FAIL("the admin port was taken");
  } catch (const std::system_error& e) {
    CHECK(std::string(e.what()).find("admin API") != std::string::npos);
  }
  CHECK(gw.local_endpoints().empty());  // nothing public was opened either
}

TEST_CASE("admin: the configuration file's admin section reaches the gateway through apply()") {
  RawServer upstream = echo_upstream();
  const auto config = load_config(R"({
    "listeners": [ { "port": 0 } ],
    "upstreams": { "users": { "endpoints": ["127.0.0.1:)" + std::to_string(upstream.port()) + R"("] } },
    "routes": [ { "path": "/users", "upstream": "users" } ],
    "admin": { "port": 0 } })");
  Gateway gw{GatewayOptions{.workers = 1}};
  apply(config, gw);
  gw.start();
  const auto admin_port = gw.admin_endpoint().value().port();
  const Reply r = call(admin_port, "GET", "/upstreams");
  CHECK(r.status == 200);
  CHECK(r.parsed()["upstreams"][0]["name"] == "users");
  gw.stop();
  gw.wait();
}
