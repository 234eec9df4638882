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

  // A form with thousands of fields: every CRS rule runs over every one of them.
  std::string heavy;
  for (int i = 0; i < 4000; ++i) heavy += "field" + std::to_string(i) + "=an+ordinary+value&";
  std::atomic<bool> heavy_done{false};
  int heavy_status = 0;
  clk::duration heavy_time{};
  std::thread heavy_client([&] {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(120, 0);
    const auto t0 = clk::now();
    auto r = c.Post("/bulk", heavy, "application/x-www-form-urlencoded");
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
