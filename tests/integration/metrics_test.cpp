// Prometheus metrics end to end: known traffic through a real gateway (a live upstream, a dead
// one, unrouted paths, API-key authentication), then a scrape through a local-handler route,
// checked value by value and by `promtool check metrics` (Debian's prometheus package).
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/api_key_verifier.hpp"
#include "gatehouse/config.hpp"
#include "integration/fixture.hpp"
#include "support/httplib_server.hpp"
#include "support/raw_http.hpp"
#include "support/temp_dir.hpp"
#include "support/test_certs.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const std::string kKey = "gh_metrics_1f2e3d4c5b6a79880f1e2d3c4b5a6978";

struct Service {
  Service() {
    server.Get(R"(/.*)", [](const httplib::Request&, httplib::Response& res) { res.set_content("hello", "text/plain"); });
    port = runner.start(server);
  }
  httplib::Server server;
  unsigned short port = 0;
  ServerThread runner;  // last: stops the server before the members its handlers use
};

// The scrape route: what an admin listener's /metrics does.
Route metrics_route(std::shared_ptr<MetricsRegistry> registry) {
  return {.name = "metrics", .path = "/metrics", .prefix = false,
          .origin = [registry](Exchange&) {
            Response r(Status::ok);
            r.set_body(registry->render_prometheus(), MetricsRegistry::kContentType);
            return Flow::respond(std::move(r));
          }};
}

std::string get(unsigned short port, const std::string& path, const std::string& headers = {}) {
  return exchange_raw(port, "GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + headers + "\r\n", 5s);
}

std::string scrape(unsigned short port) {
  const std::string r = get(port, "/metrics");
  REQUIRE(status_of(r) == 200);
  CHECK(lower(head_of(r)).find("content-type: text/plain; version=0.0.4") != std::string::npos);
  return body_of(r);
}

// The value of the sample `series` (name and labels exactly as rendered), or -1.
double value_of(const std::string& text, const std::string& series) {
  const std::string prefix = series + " ";
  std::size_t pos = 0;
  while ((pos = text.find(prefix, pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      const std::size_t end = text.find('\n', pos);
      return std::stod(text.substr(pos + prefix.size(), end - pos - prefix.size()));
    }
    pos += prefix.size();
  }
  return -1;
}

// Runs promtool on the scrape; fails (never skips) when promtool is missing.
void check_with_promtool(const std::string& text) {
  const auto which = run_command("command -v promtool");
  if (which.exit_code != 0) {
    FAIL("promtool not found: install Debian's prometheus package (scripts/install-deps.sh does)");
  }
  TempDir dir;
  const std::string file = dir.file("scrape.prom", text);
  const auto res = run_command("timeout 30 promtool check metrics < " + file + " 2>&1");
  CAPTURE(res.output);
  CAPTURE(text);
  CHECK(res.exit_code == 0);
}

}  // namespace

TEST_CASE("metrics: known traffic is counted, and the scrape passes promtool") {
  Service svc;
  const json doc = {
      {"workers", 1},
      {"listeners", {{{"name", "public"}, {"address", "127.0.0.1"}, {"port", 0}}}},
      {"upstreams",
       {{"svc", {{"endpoints", {"127.0.0.1:" + std::to_string(svc.port)}}}},
        {"dead", {{"endpoints", {"127.0.0.1:" + std::to_string(closed_port())}}, {"connect_retries", 0}}}}},
      {"verifiers",
       {{"partners",
         {{"type", "api_keys"},
          {"keys", {{{"sha256", auth::ApiKeyVerifier::hash(kKey)}, {"principal", "partner-a"}}}}}}}},
      {"routes",
       {{{"name", "ok"}, {"path", "/ok"}, {"upstream", "svc"}},
        {{"name", "dead"}, {"path", "/dead"}, {"upstream", "dead"}},
        {{"name", "keys"},
         {"path", "/keys"},
         {"upstream", "svc"},
         {"middleware",
          {{{"name", "authenticate"},
            {"options", {{"verifiers", {"partners"}}, {"credential", {{"header", "x-api-key"}}}}}}}}}}}};
  const GatewayConfig config = load_config(doc.dump());
  CHECK(config.options.metrics.enabled);
  GatewayUnderTest g(config.options);
  apply(config, *g.gw);
  REQUIRE(g.gw->metrics());
  g.gw->route(metrics_route(g.gw->metrics()));
  g.gw->start();
  const unsigned short port = g.gw->local_endpoints().at(0).port();

  for (int i = 0; i < 3; ++i) CHECK(status_of(get(port, "/ok")) == 200);
  for (int i = 0; i < 2; ++i) CHECK(status_of(get(port, "/nowhere")) == 404);
  CHECK(status_of(get(port, "/dead")) == 502);
  CHECK(status_of(get(port, "/keys", "X-Api-Key: " + kKey + "\r\n")) == 200);
  CHECK(status_of(get(port, "/keys", "X-Api-Key: not-the-key\r\n")) == 401);
  CHECK(status_of(get(port, "/keys")) == 401);
  CHECK(status_of(exchange_raw(port, "GARBAGE\r\n\r\n", 5s)) == 400);  // refused before routing

  // The sessions of the closed connections end just after the client sees the close: wait (a
  // bounded while) until only the scrape's own connection is open.
  std::string text = scrape(port);
  for (int i = 0; i < 50 && value_of(text, "gatehouse_downstream_connections_active{listener=\"public\"}") != 1; ++i) {
    std::this_thread::sleep_for(20ms);
    text = scrape(port);
  }
  CAPTURE(text);
  const auto requests = [&](const std::string& route, const std::string& status) {
    return value_of(text, "gatehouse_requests_total{route=\"" + route + "\",method_class=\"GET\",status_class=\"" +
                              status + "\"}");
  };
  CHECK(requests("ok", "2xx") == 3);
  CHECK(requests("_none", "4xx") == 2);
  CHECK(value_of(text, "gatehouse_requests_total{route=\"_none\",method_class=\"other\",status_class=\"4xx\"}") == 1);
  CHECK(requests("dead", "5xx") == 1);
  CHECK(requests("keys", "2xx") == 1);
  CHECK(requests("keys", "4xx") == 2);
  CHECK(value_of(text, "gatehouse_request_duration_seconds_count{route=\"ok\"}") == 3);
  CHECK(value_of(text, "gatehouse_request_duration_seconds_bucket{route=\"ok\",le=\"+Inf\"}") == 3);
  CHECK(value_of(text, "gatehouse_request_duration_seconds_sum{route=\"ok\"}") > 0);
  CHECK(value_of(text, "gatehouse_request_bytes_total{route=\"ok\"}") > 3 * 40);
  CHECK(value_of(text, "gatehouse_response_bytes_total{route=\"ok\"}") > 3 * 5);
  CHECK(value_of(text, "gatehouse_upstream_duration_seconds_count{upstream=\"svc\"}") == 4);
  CHECK(value_of(text, "gatehouse_upstream_connect_failures_total{upstream=\"dead\"}") == 1);
  CHECK(value_of(text, "gatehouse_upstream_retries_total{upstream=\"dead\"}") == -1);  // none: not shown
  CHECK(value_of(text, "gatehouse_upstream_pool_idle_connections{upstream=\"svc\"}") >= 0);
  CHECK(value_of(text, "gatehouse_auth_total{verifier=\"partners\",result=\"success\"}") == 1);
  CHECK(value_of(text, "gatehouse_auth_total{verifier=\"partners\",result=\"unknown_key\"}") == 1);
  CHECK(value_of(text, "gatehouse_auth_total{verifier=\"none\",result=\"missing\"}") == 1);
  CHECK(value_of(text, "gatehouse_downstream_connections_active{listener=\"public\"}") == 1);
  CHECK(value_of(text, "gatehouse_downstream_connections_total{listener=\"public\"}") >= 11);
  check_with_promtool(text);
  // The scrapes are requests too.
  text = scrape(port);
  CHECK(requests("metrics", "2xx") >= 1);
}

TEST_CASE("metrics: TLS handshakes are counted by result") {
  TestPki pki;
  const CertificateFiles leaf = pki.issue("localhost", {"localhost"}, {"127.0.0.1"});
  GatewayUnderTest g;
  g.gw->route(metrics_route(g.gw->metrics()));
  g.gw->listen({.address = "127.0.0.1", .port = 0, .tls = ServerTls{.certificates = {leaf}}});
  g.gw->listen({.address = "127.0.0.1", .port = 0, .name = "plain"});
  g.gw->start();
  const auto endpoints = g.gw->local_endpoints();
  const unsigned short tls = endpoints.at(0).port();
  const unsigned short plain_port = endpoints.at(1).port();

  const auto ok = run_command("timeout 20 curl -sS --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code}' --cacert " +
                              pki.ca_cert + " https://127.0.0.1:" + std::to_string(tls) + "/metrics");
  CHECK(ok.output == "200");
  exchange_raw(tls, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", 3s);  // plain text on the TLS port
  const std::string text = scrape(plain_port);
  CAPTURE(text);
  const std::string listener = "127.0.0.1:" + std::to_string(tls);
  CHECK(value_of(text, "gatehouse_tls_handshakes_total{listener=\"" + listener + "\",result=\"success\"}") == 1);
  CHECK(value_of(text, "gatehouse_tls_handshakes_total{listener=\"" + listener + "\",result=\"failure\"}") == 1);
  CHECK(value_of(text, "gatehouse_downstream_connections_total{listener=\"plain\"}") == 1);
}

TEST_CASE("metrics: an application's registry holds its own metrics, counted by its middleware") {
  // The application's metric, counted per request through the exchange's shard.
  class TenantCounter final : public Middleware {
   public:
    explicit TenantCounter(Counter c) : c_(std::move(c)) {}
    Flow on_request(Exchange& ex) const override {
      if (MetricsShard* s = ex.metrics()) c_.inc(*s, {ex.request().headers().get("x-tenant").value_or("none")});
      return Flow::next();
    }

   private:
    Counter c_;
  };
  auto registry = std::make_shared<MetricsRegistry>();
  Counter tenants = registry->counter({"app_tenant_requests_total", "Requests by tenant.", {"tenant"}, 10});
  GatewayOptions options;
  options.metrics.registry = registry;
  GatewayUnderTest g(options);
  CHECK(g.gw->metrics() == registry);
  g.gw->use<TenantCounter>(tenants);
  g.gw->route(metrics_route(registry));
  g.gw->route({.name = "hello", .path = "/hello", .origin = [](Exchange&) { return Flow::respond(Status::ok, "hi"); }});
  const auto port = g.start();
  CHECK(status_of(get(port, "/hello", "X-Tenant: acme\r\n")) == 200);
  CHECK(status_of(get(port, "/hello", "X-Tenant: acme\r\n")) == 200);
  CHECK(status_of(get(port, "/hello")) == 200);
  // The application scrapes its registry itself (its own server, here directly).
  const std::string text = registry->render_prometheus();
  CAPTURE(text);
  CHECK(value_of(text, "app_tenant_requests_total{tenant=\"acme\"}") == 2);
  CHECK(value_of(text, "app_tenant_requests_total{tenant=\"none\"}") == 1);
  CHECK(value_of(text, "gatehouse_requests_total{route=\"hello\",method_class=\"GET\",status_class=\"2xx\"}") == 3);
  check_with_promtool(text);
}

TEST_CASE("metrics: disabled, nothing is counted and the gateway works as before") {
  GatewayOptions options;
  options.metrics.enabled = false;
  GatewayUnderTest g(options);
  CHECK_FALSE(g.gw->metrics());
  std::atomic<bool> saw_shard{true};  // written on the worker's thread
  g.gw->route({.path = "/", .origin = [&saw_shard](Exchange& ex) {
                 saw_shard.store(ex.metrics() != nullptr);
                 return Flow::respond(Status::ok, "ok");
               }});
  const auto port = g.start();
  CHECK(status_of(get(port, "/")) == 200);
  CHECK_FALSE(saw_shard.load());

  const GatewayConfig off = load_config(R"({"metrics": {"enabled": false},
      "listeners": [{"port": 0}], "routes": [{"path": "/", "respond": {"status": 200}}]})");
  CHECK_FALSE(off.options.metrics.enabled);
}

TEST_CASE("metrics: a reloaded configuration counts its routes and listeners in the same registry") {
  GatewayUnderTest g;
  const std::shared_ptr<MetricsRegistry> registry = g.gw->metrics();
  REQUIRE(registry);
  g.gw->route({.name = "before", .path = "/before", .origin = [](Exchange&) { return Flow::respond(Status::ok, "b"); }});
  g.gw->listen({.address = "127.0.0.1", .port = 0, .name = "public"});
  g.gw->start();
  const unsigned short port = g.gw->local_endpoints().at(0).port();
  CHECK(status_of(get(port, "/before")) == 200);

  // The same listener (kept: same socket), a route renamed and one added, and a new listener.
  GatewayDefinition next = g.gw->definition();
  next.routes.clear();
  next.routes.push_back({.name = "after", .path = "/after", .origin = [](Exchange&) { return Flow::respond(Status::ok, "a"); }});
  next.listeners.push_back({.address = "127.0.0.1", .port = 0, .name = "second"});
  next.options.metrics.enabled = false;  // ignored by a reload: the registry stays
  const ReloadSummary summary = g.gw->reload(std::move(next));
  CHECK(summary.listeners_kept == 1);
  CHECK(summary.listeners_opened == 1);
  CHECK(g.gw->metrics() == registry);
  CHECK(g.gw->options().metrics.enabled);
  const unsigned short second = g.gw->local_endpoints().at(1).port();
  CHECK(status_of(get(port, "/after")) == 200);
  CHECK(status_of(get(second, "/after")) == 200);
  CHECK(status_of(get(port, "/before")) == 404);

  std::string text = registry->render_prometheus();
  const auto open = [&](const std::string& listener) {
    return value_of(text, "gatehouse_downstream_connections_active{listener=\"" + listener + "\"}");
  };
  for (int i = 0; i < 50 && (open("public") != 0 || open("second") != 0); ++i) {
    std::this_thread::sleep_for(20ms);
    text = registry->render_prometheus();
  }
  CAPTURE(text);
  const auto requests = [&](const std::string& route, const std::string& status) {
    return value_of(text, "gatehouse_requests_total{route=\"" + route + "\",method_class=\"GET\",status_class=\"" +
                              status + "\"}");
  };
  CHECK(requests("before", "2xx") == 1);
  CHECK(requests("after", "2xx") == 2);
  CHECK(requests("_none", "4xx") == 1);
  CHECK(value_of(text, "gatehouse_downstream_connections_total{listener=\"public\"}") == 3);
  CHECK(value_of(text, "gatehouse_downstream_connections_total{listener=\"second\"}") == 1);
  CHECK(value_of(text, "gatehouse_downstream_connections_active{listener=\"public\"}") == 0);
  CHECK(value_of(text, "gatehouse_downstream_connections_active{listener=\"second\"}") == 0);
  check_with_promtool(text);
}
