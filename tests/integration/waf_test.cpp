// The WAF in a real gateway on loopback: CRS verdicts over real connections, metrics, and the
// point of the evaluation pool: while one WAF-heavy request is evaluated, the same gateway worker
// keeps serving its other connections.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "gatehouse/middleware/waf.hpp"
#include "gatehouse/testing.hpp"
#include "integration/fixture.hpp"
#include "support/httplib_server.hpp"
#include "support/raw_http.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

TEST_CASE("WAF: a heavy evaluation does not stall the worker's other connections") {
  httplib::Server origin;
  std::atomic<int> served{0};
  origin.Get("/.*", [&](const httplib::Request&, httplib::Response& res) {
    ++served;
    res.set_content("ok", "text/plain");
  });
  origin.Post("/.*", [&](const httplib::Request& req, httplib::Response& res) {
    ++served;
    res.set_content(std::to_string(req.body.size()), "text/plain");
  });
  ServerThread origin_thread;
  const unsigned short origin_port = origin_thread.start(origin);

  testing::EventRecorder recorder;
  GatewayOptions go;
  go.workers = 1;  // one I/O thread: every connection below shares it
  go.security_events = recorder.security_events();
  GatewayUnderTest g(go);
  WafOptions wo;
  wo.threads = 2;
  wo.request_body_limit = 2 * 1024 * 1024;
  wo.time_limit = 60s;  // the heavy request must finish, however slow the machine
  auto waf = std::make_shared<const Waf>(wo);
  g.gw->use(waf);
  g.gw->route({.name = "api", .path = "/", .origin = upstream_at(origin_port)});
  const unsigned short port = g.start();

  // A JSON object with thousands of fields: every CRS rule runs over every one of them. (JSON, not
  // a form: cpp-httplib's origin refuses form bodies over 8 KiB with 413.)
  std::string heavy = "{";
  for (int i = 0; i < 4000; ++i) heavy += "\"field" + std::to_string(i) + "\":\"an ordinary value\",";
  heavy.back() = '}';
  std::atomic<bool> heavy_done{false};
  int heavy_status = 0;
  clk::duration heavy_time{};
  std::thread heavy_client([&] {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(120, 0);
    const auto t0 = clk::now();
    auto r = c.Post("/bulk", heavy, "application/json");
    heavy_time = clk::now() - t0;
    heavy_status = r ? r->status : -1;
    heavy_done = true;
  });
  // Wait until the heavy request is on the WAF pool.
  const auto wait_until = clk::now() + 30s;
  while (waf->pending() == 0 && !heavy_done && clk::now() < wait_until) std::this_thread::sleep_for(1ms);

  // Meanwhile: new connections to the same worker, each inspected by the WAF too.
  int during = 0;
  clk::duration slowest{};
  for (int i = 0; i < 200 && !heavy_done; ++i) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(10, 0);
    const auto t0 = clk::now();
    auto r = c.Get("/api/users/" + std::to_string(i) + "?fields=name,email");
    const auto took = clk::now() - t0;
    REQUIRE(r);
    CHECK(r->status == 200);
    if (!heavy_done) {
      ++during;
      slowest = std::max(slowest, took);
    }
  }
  heavy_client.join();
  // A verdict, whichever (the CRS may score so many arguments), never a 503 for a time-out.
  CAPTURE(heavy_status);
  CHECK((heavy_status == 200 || heavy_status == 403));
  MESSAGE("heavy request: " << std::chrono::duration_cast<std::chrono::milliseconds>(heavy_time).count()
                            << " ms; " << during << " other requests served meanwhile, slowest "
                            << std::chrono::duration_cast<std::chrono::milliseconds>(slowest).count() << " ms");
  CHECK(during >= 3);
  CHECK(slowest < heavy_time / 2);

  // An attack over a real connection: 403 with the gateway's JSON error, the origin never sees it.
  const int before = served;
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get("/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--");
  REQUIRE(r);
  CHECK(r->status == 403);
  CHECK(r->body.find("request_id") != std::string::npos);
  CHECK(served == before);
  bool reported = false;
  for (const auto& e : recorder.events())
    reported = reported || (e.kind == SecurityEventKind::waf_match && e.http_status == 403 && !e.request_id.empty());
  CHECK(reported);

  // Metrics: verdicts by route, matches by rule, evaluation time.
  const std::string scrape = g.gw->metrics()->render_prometheus();
  CHECK(scrape.find(R"(gatehouse_waf_requests_total{route="api",result="blocked"})") != std::string::npos);
  CHECK(scrape.find(R"(gatehouse_waf_requests_total{route="api",result="pass"})") != std::string::npos);
  CHECK(scrape.find(R"(gatehouse_waf_rule_matches_total{route="api",rule="942100"})") != std::string::npos);
  CHECK(scrape.find("gatehouse_waf_evaluation_seconds_count") != std::string::npos);
  CHECK(scrape.find("gatehouse_waf_pending 0") != std::string::npos);
}

// Regression: the session strips Content-Length and Transfer-Encoding before middleware runs, and
// the CRS scored every POST as lacking them (920180) on top of a numeric Host (920350): ordinary
// JSON and form POSTs from curl were refused. Real clients, real gateway, default CRS settings.
TEST_CASE("WAF: ordinary curl traffic passes the CRS through a real gateway; an attack does not") {
  httplib::Server origin;
  std::atomic<int> served{0};
  origin.Get("/.*", [&](const httplib::Request&, httplib::Response& res) {
    ++served;
    res.set_content("ok", "text/plain");
  });
  origin.Post("/.*", [&](const httplib::Request& req, httplib::Response& res) {
    ++served;
    res.set_content(std::to_string(req.body.size()), "text/plain");
  });
  ServerThread origin_thread;
  const unsigned short origin_port = origin_thread.start(origin);

  testing::EventRecorder recorder;
  GatewayOptions go;
  go.workers = 1;
  go.security_events = recorder.security_events();
  GatewayUnderTest g(go);
  WafOptions wo;
  wo.time_limit = 30s;
  g.gw->use(std::make_shared<const Waf>(wo));
  g.gw->route({.name = "api", .path = "/", .origin = upstream_at(origin_port)});
  const std::string base = "http://127.0.0.1:" + std::to_string(g.start());

  // The Host curl sends here is numeric (127.0.0.1:port): CRS scores it 3, under the threshold 5.
  const std::string curl = "timeout 30 curl -sS --noproxy '*' --max-time 20 -o /dev/null -w '%{http_code}' ";
  struct Case {
    const char* what;
    std::string args;
    const char* status;
  };
  const Case cases[] = {
      {"clean JSON POST", "-H 'Content-Type: application/json' --data-binary '{\"name\":\"Bob\"}' " + base + "/api/orders",
       "200"},
      {"JSON POST with quotes and apostrophes",
       "-H 'Content-Type: application/json' --data-binary '{\"name\":\"Seo-yeon O'\\''Brien\",\"qty\":2}' " + base +
           "/api/orders",
       "200"},
      {"form POST", "--data-binary 'name=bob&comment=see+you+tomorrow' " + base + "/comments", "200"},
      {"chunked JSON POST",
       "-H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' --data-binary '{\"name\":\"Bob\"}' " + base +
           "/api/orders",
       "200"},
      {"GET with a numeric Host", base + "/api/users/42?include=orders&sort=-created_at", "200"},
      {"SQL injection", base + "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", "403"},
      {"XSS in a form POST", "--data-binary 'name=bob&comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E' " + base + "/comments",
       "403"},
  };
  for (const Case& c : cases) {
    const std::string what = c.what, expected = c.status;
    CAPTURE(what);
    const auto res = run_command(curl + c.args);
    CHECK(res.exit_code == 0);
    CHECK(res.output == expected);
  }
  CHECK(served == 5);
  // The clean requests matched no protocol-enforcement rule but the numeric Host.
  for (const auto& e : recorder.events()) {
    if (e.kind != SecurityEventKind::waf_match || e.http_status == 403) continue;
    CAPTURE(e.reason);
    CHECK(e.rule_id == "920350");
  }
}
