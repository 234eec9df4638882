// Load balancing and upstream health against real upstream processes (tests/support/origin.py, one
// python3 process per instance): an instance killed mid-load is taken out within a bounded number
// of failed requests and none after, comes back through slow start, a slow instance gets less
// under least-request; health checks over TLS; the admin API and metrics show the state in force.
#include <doctest/doctest.h>
#include <httplib.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gatehouse/config.hpp"
#include "integration/fixture.hpp"
#include "proxy/health_checker.hpp"
#include "support/child_process.hpp"
#include "support/httplib_server.hpp"
#include "support/raw_http.hpp"
#include "support/test_certs.hpp"
#include "tls/tls_context.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;
using nlohmann::json;
using steady = std::chrono::steady_clock;

namespace {

const std::string kOrigin = std::string(GATEHOUSE_SOURCE_DIR) + "/tests/support/origin.py";

// One upstream instance: a python3 process answering its name.
class OriginProcess {
 public:
  explicit OriginProcess(const std::string& name, unsigned short port = 0, int delay_ms = 0)
      : child_({"python3", kOrigin, "--name", name, "--port", std::to_string(port), "--delay-ms",
                std::to_string(delay_ms)},
               "/dev/null") {
    const auto line = child_.read_line(10s);
    if (!line) throw std::runtime_error("origin " + name + " did not start");
    port_ = static_cast<unsigned short>(std::stoi(*line));
  }
  unsigned short port() const { return port_; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  void kill() { child_.kill_now(); }

 private:
  ChildProcess child_;
  unsigned short port_ = 0;
};

bool usable(const Upstream& up, const std::string& endpoint) {
  for (const auto& s : up.endpoint_states())
    if (s.endpoint == endpoint) return s.usable();
  return false;
}

template <class Pred>
bool wait_for(Pred pred, std::chrono::milliseconds limit) {
  const auto end = steady::now() + limit;
  while (steady::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

// Who served each of `n` requests ("" for a failure).
std::map<std::string, int> load(httplib::Client& client, int n, int* failures = nullptr) {
  std::map<std::string, int> served;
  for (int i = 0; i < n; ++i) {
    const auto r = client.Get("/");
    if (r && r->status == 200) {
      ++served[r->body];
    } else if (failures) {
      ++*failures;
    }
  }
  return served;
}

}  // namespace

TEST_CASE("health: an instance killed mid-load is taken out, then comes back through slow start") {
  OriginProcess a("a"), c("c");
  auto b = std::make_unique<OriginProcess>("b");
  const std::string b_endpoint = b->endpoint();
  const unsigned short b_port = b->port();
  UpstreamOptions o{.name = "svc", .endpoints = {a.endpoint(), b_endpoint, c.endpoint()}};
  o.connect_retries = 0;  // failures show until detection, rather than being retried away
  o.health.active = HealthCheckOptions{.path = "/healthz",
                                       .interval = 100ms,
                                       .timeout = 300ms,
                                       .healthy_threshold = 2,
                                       .unhealthy_threshold = 2};
  o.health.outlier_detection = OutlierDetectionOptions{
      .consecutive_gateway_failures = 2, .base_ejection_time = 300ms, .max_ejection_time = 1s, .max_ejection_percent = 50};
  o.health.slow_start = 3s;
  auto up = Upstream::create(o);
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = up});
  g.gw->admin({.port = 0});
  const unsigned short port = g.start();
  httplib::Client client("127.0.0.1", port);
  client.set_keep_alive(true);
  client.set_read_timeout(2s);

  auto served = load(client, 30);
  CHECK(served["a"] == 10);
  CHECK(served["b"] == 10);
  CHECK(served["c"] == 10);

  // Killed mid-load: count the failures until the gateway takes it out, and after.
  b->kill();
  int before = 0, after = 0;
  const auto killed = steady::now();
  while (usable(*up, b_endpoint) && steady::now() - killed < 3s) load(client, 1, &before);
  const auto detected = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - killed);
  REQUIRE_FALSE(usable(*up, b_endpoint));
  served = load(client, 100, &after);
  MESSAGE("detected after " << detected.count() << " ms and " << before << " failed requests");
  CHECK(before <= 2);  // the outlier threshold: two gateway failures in a row
  CHECK(after == 0);
  CHECK(served["b"] == 0);
  CHECK(served["a"] + served["c"] == 100);

  // What the admin API and the metrics say meanwhile.
  const auto admin = g.gw->admin_endpoint().value().port();
  const json ups = json::parse(body_of(exchange_raw(admin, "GET /upstreams HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")));
  const json& eps = ups["upstreams"][0]["endpoints"];
  CHECK(ups["upstreams"][0]["health_check"] == "http");
  CHECK(ups["upstreams"][0]["usable"] == 2);
  CHECK(eps[1]["endpoint"] == b_endpoint);
  const json& b_state = eps[1]["addresses"][0];
  CHECK((b_state["health"] == "unhealthy" || b_state["ejected"] == true));
  const std::string metrics = g.gw->metrics()->render_prometheus();
  CHECK(metrics.find("gatehouse_upstream_endpoint_healthy{upstream=\"svc\",endpoint=\"" + a.endpoint() + "\"} 1") !=
        std::string::npos);
  CHECK(metrics.find("gatehouse_upstream_health_checks_total{upstream=\"svc\",endpoint=\"" + b_endpoint +
                     "\",result=\"failed\"}") != std::string::npos);

  // Back on the same port: the checks see it, and slow start feeds it gradually.
  b = std::make_unique<OriginProcess>("b", b_port);
  REQUIRE(wait_for([&] { return usable(*up, b_endpoint); }, 3s));
  const auto returned = steady::now();
  // Its first 700 ms: at most a third of its weight (10% rising to 33%), so under 14% of the traffic.
  int early_total = 0, early_b = 0;
  while (steady::now() < returned + 700ms) {
    const auto one = load(client, 1);
    early_total += 1;
    early_b += one.count("b") ? 1 : 0;
  }
  const double early_share = static_cast<double>(early_b) / std::max(early_total, 1);
  std::this_thread::sleep_until(returned + 3100ms);
  const auto late = load(client, 90);
  const double late_share = late.count("b") ? late.at("b") / 90.0 : 0.0;
  MESSAGE("share of the returning instance: " << early_share << " of " << early_total
                                               << " requests in its first 700 ms, " << late_share << " after slow start");
  CHECK(early_total >= 10);
  CHECK(early_share < 0.2);
  CHECK(late_share == doctest::Approx(1.0 / 3).epsilon(0.05));
}

TEST_CASE("health: least request sends a slow instance less") {
  OriginProcess a("a"), b("b"), slow("slow", 0, 500);
  UpstreamOptions o{.name = "svc", .endpoints = {a.endpoint(), b.endpoint(), slow.endpoint()}};
  o.load_balancer = least_request();
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = Upstream::create(o)});
  const unsigned short port = g.start();

  std::mutex mu;
  std::map<std::string, int> served;
  std::vector<std::thread> clients;
  const auto end = steady::now() + 1500ms;
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&] {
      httplib::Client client("127.0.0.1", port);
      client.set_keep_alive(true);
      client.set_read_timeout(2s);
      while (steady::now() < end) {
        const auto r = client.Get("/");
        std::lock_guard lock(mu);
        ++served[r && r->status == 200 ? r->body : "failed"];
      }
    });
  }
  for (auto& t : clients) t.join();
  MESSAGE("a " << served["a"] << ", b " << served["b"] << ", slow " << served["slow"]);
  CHECK(served["failed"] == 0);
  CHECK(served["a"] > 30);
  CHECK(served["slow"] * 3 < served["a"]);  // round robin would give it as many as a
}

TEST_CASE("health: checks run over TLS when the upstream uses TLS, and fail on a wrong status") {
  TestPki pki;
  const auto cert = pki.issue("localhost", {"localhost"}, {"127.0.0.1"});
  httplib::SSLServer server{cert.cert_file.c_str(), cert.key_file.c_str()};
  server.Get("/healthz", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.get_header_value("Host"), "text/plain");
  });
  server.Get("/down", [](const httplib::Request&, httplib::Response& res) { res.status = 503; });
  ServerThread thread;
  const unsigned short port = thread.start(server);

  UpstreamTls tls;
  tls.ca_file = pki.ca_cert;
  const auto context = detail::make_client_context(tls);
  const UpstreamEndpoint ep{{asio::ip::make_address("127.0.0.1"), port}, "localhost:" + std::to_string(port), "localhost"};
  asio::io_context io;
  auto probe = [&](HealthCheckOptions h, asio::ssl::context* ctx) {
    auto f = asio::co_spawn(io, detail::probe_endpoint(io.get_executor(), ep, h, ctx, ""), asio::use_future);
    io.restart();
    io.run();
    return f.get();
  };
  auto r = probe({.path = "/healthz"}, context.get());
  CHECK(r.passed);
  CHECK(r.status == 200);
  r = probe({.path = "/down"}, context.get());
  CHECK_FALSE(r.passed);
  CHECK(r.status == 503);
  r = probe({.path = "/down", .expected_statuses = {{200, 299}, {503, 503}}}, context.get());
  CHECK(r.passed);
  r = probe({.kind = HealthCheckOptions::Kind::tcp}, context.get());
  CHECK(r.passed);
  // Plain HTTP to a TLS port is no answer; a TLS check of a certificate for another name fails.
  r = probe({.path = "/healthz", .timeout = 500ms}, nullptr);
  CHECK_FALSE(r.passed);
  UpstreamTls other;
  other.ca_file = pki.ca_cert;
  const UpstreamEndpoint wrong{{asio::ip::make_address("127.0.0.1"), port}, "x:1", "wrong.example"};
  auto f = asio::co_spawn(io, detail::probe_endpoint(io.get_executor(), wrong, {.path = "/healthz"}, context.get(), ""),
                          asio::use_future);
  io.restart();
  io.run();
  CHECK_FALSE(f.get().passed);
}

TEST_CASE("health: the admin API shows the upstreams of the configuration in force after a reload") {
  OriginProcess a("a");
  const auto config = load_config(R"({
    "listeners": [ { "port": 0 } ],
    "upstreams": { "first": { "endpoints": [")" + a.endpoint() + R"("] } },
    "routes": [ { "path": "/", "upstream": "first" } ],
    "admin": { "port": 0 } })");
  Gateway gw{GatewayOptions{.workers = 1}};
  apply(config, gw);
  gw.start();
  const auto admin = gw.admin_endpoint().value().port();
  auto names = [&] {
    const json j = json::parse(body_of(exchange_raw(admin, "GET /upstreams HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")));
    std::vector<std::string> out;
    for (const auto& u : j["upstreams"]) out.push_back(u["name"]);
    return out;
  };
  CHECK(names() == std::vector<std::string>{"first"});
  GatewayDefinition next = gw.definition();
  next.routes.at(0).origin =
      Upstream::create({.name = "second", .endpoints = {a.endpoint()}, .weights = {{a.endpoint(), 4}}});
  gw.reload(std::move(next));
  CHECK(names() == std::vector<std::string>{"second"});
  gw.stop();
  gw.wait();
}
