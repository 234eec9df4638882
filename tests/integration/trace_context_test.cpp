// W3C trace context end to end on loopback: what a recording upstream receives when the gateway
// continues a trace, starts one, replaces an invalid traceparent, or ignores an untrusted caller's;
// and that the access log and the security events carry the same trace id.
#include <doctest/doctest.h>
#include <httplib.h>

#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gatehouse/testing.hpp"
#include "integration/fixture.hpp"
#include "support/httplib_server.hpp"
#include "support/raw_http.hpp"
#include "support/temp_dir.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// Records the trace fields of every request it receives.
struct RecordingService {
  struct Seen {
    std::string traceparent, tracestate;
    std::size_t traceparent_fields = 0;
    bool has_tracestate = false;
  };
  RecordingService() {
    server.Get(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard l(mu);
      seen.push_back({req.get_header_value("traceparent"), req.get_header_value("tracestate"),
                      req.get_header_value_count("traceparent"), req.has_header("tracestate")});
      res.set_content("ok", "text/plain");
    });
    port = runner.start(server);
  }
  Seen last() {
    std::lock_guard l(mu);
    REQUIRE_FALSE(seen.empty());
    return seen.back();
  }
  httplib::Server server;
  unsigned short port = 0;
  std::mutex mu;
  std::vector<Seen> seen;
  ServerThread runner;
};

// What middleware saw: the trace and span ids are there in on_request already. Refuses /deny with
// a security event.
struct Observed {
  std::mutex mu;
  std::string trace_id, span_id;
};
class TraceProbe final : public Middleware {
 public:
  explicit TraceProbe(Observed& o) : o_(o) {}
  Flow on_request(Exchange& ex) const override {
    {
      std::lock_guard l(o_.mu);
      o_.trace_id = ex.trace_id();
      o_.span_id = ex.span_id();
    }
    if (ex.request().path() == "/deny") {
      ex.report(SecurityEvent{.kind = SecurityEventKind::authorization_denied, .reason = "probe"});
      return Flow::respond(Status::forbidden);
    }
    return Flow::next();
  }

 private:
  Observed& o_;
};

std::string get(unsigned short port, const std::string& path, const std::string& extra = {}) {
  return exchange_raw(port, "GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + extra + "\r\n");
}

// The fields of a traceparent the gateway sent: trace id and parent id.
struct Sent {
  std::string trace_id, parent_id, flags;
};
Sent split(const std::string& tp) {
  REQUIRE(tp.size() == 55);
  CHECK(tp.starts_with("00-"));
  return {tp.substr(3, 32), tp.substr(36, 16), tp.substr(53, 2)};
}

}  // namespace

TEST_CASE("trace context: continued, started, invalid replaced, untrusted caller ignored; logs and events agree") {
  RecordingService svc;
  TempDir dir;
  const std::string log_path = (dir.dir / "access.log").string();
  auto log = std::make_shared<AccessLog>(AccessLogOptions{.path = log_path});
  testing::EventRecorder recorder;
  Observed observed;

  GatewayOptions options{.workers = 1, .security_events = recorder.security_events()};
  options.trace_context.continue_from = TraceContinue::all;
  Gateway gw(options);
  gw.listen({.address = "127.0.0.1", .port = 0, .name = "open"});
  // A listener whose own setting continues only 10.0.0.0/8: loopback callers are not trusted.
  gw.listen({.address = "127.0.0.1", .port = 0, .name = "edge",
             .trace_context = TraceContextOptions{.continue_from = TraceContinue::trusted,
                                                  .trusted_sources = {"10.0.0.0/8"}, .sample_new = false}});
  gw.use(log);
  gw.use(std::make_shared<TraceProbe>(observed));
  gw.route({.name = "svc", .path = "/", .origin = upstream_at(svc.port)});
  gw.start();
  const unsigned short open = gw.local_endpoints().at(0).port();
  const unsigned short edge = gw.local_endpoints().at(1).port();
  auto probe = [&] {
    std::lock_guard l(observed.mu);
    return std::pair{observed.trace_id, observed.span_id};
  };

  // 1. Continued: same trace id, the gateway's span as parent, the caller's tracestate.
  CHECK(status_of(get(open, "/a", "traceparent: " + kTraceparent + "\r\ntracestate: congo=t61rcWkgMzE , rojo=1\r\n")) == 200);
  auto seen = svc.last();
  CHECK(seen.traceparent_fields == 1);
  Sent sent = split(seen.traceparent);
  CHECK(sent.trace_id == kTraceId);
  CHECK(sent.parent_id != "00f067aa0ba902b7");
  CHECK(sent.flags == "01");
  CHECK(probe().first == kTraceId);
  CHECK(probe().second == sent.parent_id);
  CHECK(seen.tracestate == "congo=t61rcWkgMzE,rojo=1");

  // 2. Started: no traceparent from the caller.
  CHECK(status_of(get(open, "/b")) == 200);
  seen = svc.last();
  sent = split(seen.traceparent);
  CHECK(sent.trace_id != kTraceId);
  CHECK(sent.trace_id == probe().first);
  CHECK(sent.parent_id == probe().second);
  CHECK(sent.flags == "01");  // sample_new defaults to true
  CHECK_FALSE(seen.has_tracestate);
  const std::string started = sent.trace_id;

  // 3. Invalid (uppercase hex) is replaced, never forwarded, with its tracestate.
  CHECK(status_of(get(open, "/c", "traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01\r\n"
                                  "tracestate: congo=1\r\n")) == 200);
  seen = svc.last();
  CHECK(seen.traceparent_fields == 1);
  sent = split(seen.traceparent);
  CHECK(sent.trace_id != "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(seen.traceparent.find("4BF92F") == std::string::npos);
  CHECK_FALSE(seen.has_tracestate);

  // 4. Untrusted caller on the edge listener: a valid traceparent is not continued.
  CHECK(status_of(get(edge, "/d", "traceparent: " + kTraceparent + "\r\ntracestate: congo=1\r\n")) == 200);
  seen = svc.last();
  sent = split(seen.traceparent);
  CHECK(sent.trace_id != kTraceId);
  CHECK(sent.flags == "00");  // the edge listener's sample_new
  CHECK_FALSE(seen.has_tracestate);

  // 5. A security event from middleware, and one for a request refused before routing.
  CHECK(status_of(get(open, "/deny", "traceparent: " + kTraceparent + "\r\n")) == 403);
  CHECK(status_of(exchange_raw(open, "GET /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")) == 400);

  gw.stop();
  gw.wait();
  log->flush();
  const auto events = recorder.events();
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == SecurityEventKind::authorization_denied);
  CHECK(events[0].trace_id == kTraceId);
  CHECK(events[1].kind == SecurityEventKind::protocol_violation);
  REQUIRE(events[1].trace_id.size() == 32);

  std::ifstream in(log_path);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  REQUIRE(lines.size() == 6);
  CHECK(lines[0].at("trace_id") == kTraceId);
  CHECK(lines[1].at("trace_id") == started);
  CHECK(lines[4].at("trace_id") == kTraceId);
  CHECK(lines[4].at("status") == 403);
  CHECK(lines[5].at("status") == 400);
  CHECK(lines[5].at("trace_id") == events[1].trace_id);
}

TEST_CASE("trace context off: the fields pass through untouched and nothing is logged for them") {
  RecordingService svc;
  GatewayOptions options{.workers = 1};
  options.trace_context.enabled = false;
  GatewayUnderTest g(options);
  g.gw->route({.path = "/", .origin = upstream_at(svc.port)});
  const auto port = g.start();
  CHECK(status_of(get(port, "/", "traceparent: not-a-traceparent\r\ntracestate: x=1\r\n")) == 200);
  const auto seen = svc.last();
  CHECK(seen.traceparent == "not-a-traceparent");
  CHECK(seen.tracestate == "x=1");
}
