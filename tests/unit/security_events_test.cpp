// Security events without sockets: the ECS and CEF formats (fields, escaping, no secret leaks),
// the reporter's rate cap, drop counting and flush, RFC 5424 framing, the file sink's reopen,
// and the events of Exchange::report, Authenticate and Authorize.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/middleware/authenticate.hpp"
#include "gatehouse/middleware/authorize.hpp"
#include "gatehouse/security_events.hpp"
#include "gatehouse/testing.hpp"
#include "observe/syslog_sink.hpp"
#include "support/jwt_signer.hpp"
#include "support/temp_dir.hpp"

using namespace gatehouse;
namespace gt = gatehouse::testing;
using nlohmann::json;

namespace {

using std::chrono::system_clock;
const system_clock::time_point kTime = system_clock::time_point{std::chrono::milliseconds{1'700'000'000'123}};

SecurityEvent full_event() {
  SecurityEvent e;
  e.time = kTime;
  e.kind = SecurityEventKind::authentication_failure;
  e.outcome = SecurityEventOutcome::failure;
  e.reason = "token expired";
  e.client_ip = asio::ip::make_address("203.0.113.9");
  e.peer = asio::ip::tcp::endpoint(asio::ip::make_address("10.0.0.2"), 40001);
  e.route = "orders";
  e.request_id = "req-1";
  e.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  e.http_method = "GET";
  e.url_path = "/api/orders/7";
  e.http_status = 401;
  e.user_name = "alice";
  e.rule_id = "r1";
  e.rule_name = "scopes(orders:read)";
  e.label("verifier", "jwt").label("Key.Id", "k1");
  return e;
}

// Keeps every line; optionally blocks in write() until released (a slow collector).
class CollectingSink final : public EventSink {
 public:
  void write(const SecurityEvent& event, std::string_view line) override {
    std::unique_lock lk(mu_);
    in_write_ = true;
    cv_.notify_all();
    cv_.wait(lk, [&] { return !blocked_; });
    events_.push_back(event);
    lines_.emplace_back(line);
  }
  void block() {
    std::lock_guard lk(mu_);
    blocked_ = true;
  }
  void release() {
    std::lock_guard lk(mu_);
    blocked_ = false;
    cv_.notify_all();
  }
  bool wait_in_write() {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, std::chrono::seconds(5), [&] { return in_write_; });
  }
  std::vector<SecurityEvent> events() {
    std::lock_guard lk(mu_);
    return events_;
  }
  std::vector<std::string> lines() {
    std::lock_guard lk(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool blocked_ = false, in_write_ = false;
  std::vector<SecurityEvent> events_;
  std::vector<std::string> lines_;
};

std::size_t count_action(const std::vector<SecurityEvent>& events, std::string_view action) {
  return static_cast<std::size_t>(
      std::count_if(events.begin(), events.end(), [&](const SecurityEvent& e) { return e.action == action; }));
}

std::string label(const SecurityEvent& e, std::string_view key) {
  for (const auto& f : e.labels)
    if (f.key == key) return f.value;
  return {};
}

}  // namespace

TEST_CASE("ECS: every documented field lands where the schema says") {
  const json j = json::parse(format_ecs(full_event()));
  CHECK(j["@timestamp"] == "2023-11-14T22:13:20.123Z");
  CHECK(j["message"] == "Authentication failure: token expired");
  CHECK(j["ecs"]["version"] == "8.11.0");
  CHECK(j["event"]["kind"] == "event");
  CHECK(j["event"]["category"] == json::array({"authentication"}));
  CHECK(j["event"]["type"] == json::array({"start"}));
  CHECK(j["event"]["action"] == "authentication-failure");
  CHECK(j["event"]["outcome"] == "failure");
  CHECK(j["event"]["reason"] == "token expired");
  CHECK(j["event"]["severity"] == 5);
  CHECK(j["event"]["dataset"] == "gatehouse.security");
  CHECK(j["service"]["name"] == "gatehouse");
  CHECK(j["source"]["ip"] == "10.0.0.2");
  CHECK(j["source"]["port"] == 40001);
  CHECK(j["client"]["ip"] == "203.0.113.9");
  CHECK(j["network"]["forwarded_ip"] == "203.0.113.9");
  CHECK(j["url"]["path"] == "/api/orders/7");
  CHECK(j["http"]["request"]["method"] == "GET");
  CHECK(j["http"]["request"]["id"] == "req-1");
  CHECK(j["http"]["response"]["status_code"] == 401);
  CHECK(j["user"]["name"] == "alice");
  CHECK(j["rule"]["id"] == "r1");
  CHECK(j["rule"]["name"] == "scopes(orders:read)");
  CHECK(j["trace"]["id"] == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(j["labels"]["route"] == "orders");
  CHECK(j["labels"]["verifier"] == "jwt");
  CHECK(j["labels"]["key_id"] == "k1");  // key made an ECS-safe label name
}

TEST_CASE("ECS: absent fields are left out, the client is the peer when no proxy is involved") {
  SecurityEvent e;
  e.time = kTime;
  e.kind = SecurityEventKind::waf_match;
  e.peer = asio::ip::tcp::endpoint(asio::ip::make_address("::1"), 5000);
  e.client_ip = asio::ip::make_address("::1");
  const json j = json::parse(format_ecs(e));
  CHECK(j["event"]["kind"] == "alert");
  CHECK(j["event"]["action"] == "waf-match");
  CHECK(j["source"]["ip"] == "::1");
  CHECK_FALSE(j.contains("network"));
  for (const char* absent : {"url", "http", "user", "rule", "trace", "labels"}) CHECK_FALSE(j.contains(absent));
  CHECK_FALSE(j["event"].contains("reason"));
}

TEST_CASE("ECS: hostile text stays inside its field: one ASCII line, valid JSON") {
  SecurityEvent e = full_event();
  e.reason = "a\"b\\c\nd\re\x01\x7f \xc3\xa9 \xff\xfe end";
  e.url_path = "/x\n{\"injected\":1}";
  const std::string line = format_ecs(e);
  CHECK(line.find('\n') == std::string::npos);
  CHECK(line.find('\r') == std::string::npos);
  CHECK(std::all_of(line.begin(), line.end(), [](char c) { return c >= 0x20 && c < 0x7f; }));
  const json j = json::parse(line);
  CHECK(j["url"]["path"] == "/x\n{\"injected\":1}");
  CHECK_FALSE(j.contains("injected"));
  CHECK(j["event"]["reason"].get<std::string>().starts_with("a\"b\\c\nd\re"));
}

TEST_CASE("CEF: header, extension keys and escaping") {
  SecurityEvent e = full_event();
  e.reason = "a=b\\c\nd|e";
  const std::string line = format_cef(e);
  CHECK(line.starts_with("CEF:0|gatehouse|gatehouse|"));
  CHECK(line.find("|authentication_failure|Authentication failure|5|") != std::string::npos);
  CHECK(line.find("rt=1700000000123") != std::string::npos);
  CHECK(line.find("act=authentication-failure") != std::string::npos);
  CHECK(line.find("outcome=failure") != std::string::npos);
  CHECK(line.find("reason=a\\=b\\\\c\\nd|e") != std::string::npos);  // '|' needs no escape in extensions
  CHECK(line.find("src=203.0.113.9") != std::string::npos);
  CHECK(line.find("cs6=10.0.0.2 40001 cs6Label=peer") != std::string::npos);
  CHECK(line.find("requestMethod=GET") != std::string::npos);
  CHECK(line.find("request=/api/orders/7") != std::string::npos);
  CHECK(line.find("suser=alice") != std::string::npos);
  CHECK(line.find("externalId=req-1") != std::string::npos);
  CHECK(line.find("cn1=401 cn1Label=httpStatus") != std::string::npos);
  CHECK(line.find("cs1=orders cs1Label=route") != std::string::npos);
  CHECK(line.find("cs5=verifier\\=jwt;key_id\\=k1 cs5Label=labels") != std::string::npos);
  CHECK(line.find('\n') == std::string::npos);

  SecurityEvent v6;
  v6.kind = SecurityEventKind::ban;
  v6.client_ip = asio::ip::make_address("2001:db8::1");
  v6.peer = asio::ip::tcp::endpoint(*v6.client_ip, 443);
  const std::string l6 = format_cef(v6);
  CHECK(l6.find("c6a2=2001:db8::1 c6a2Label=Source IPv6 Address") != std::string::npos);
  CHECK(l6.find("spt=443") != std::string::npos);
  CHECK(l6.find("|ban|Client banned|7|") != std::string::npos);
}

TEST_CASE("kind names round-trip") {
  for (std::size_t i = 0; i < kSecurityEventKindCount; ++i) {
    const auto k = static_cast<SecurityEventKind>(i);
    CHECK(security_event_kind(to_string(k)) == k);
  }
  CHECK_FALSE(security_event_kind("nope").has_value());
}

TEST_CASE("RFC 5424 framing and RFC 6587 octet counting") {
  const std::string m = detail::syslog_message(10, 4, kTime, "gw-1", "gatehouse", "4242", "authentication_failure",
                                               "{\"a\":1}");
  CHECK(m == "<84>1 2023-11-14T22:13:20.123000Z gw-1 gatehouse 4242 authentication_failure - {\"a\":1}");
  CHECK(detail::octet_counted(m) == std::to_string(m.size()) + " " + m);
  CHECK(detail::syslog_header_field("my host\n", 255) == "myhost");
  CHECK(detail::syslog_header_field("", 48) == "-");
  CHECK(detail::syslog_header_field(std::string(40, 'x'), 32) == std::string(32, 'x'));
  CHECK(syslog_facility("authpriv") == 10);
  CHECK(syslog_facility("local7") == 23);
  CHECK(syslog_facility("bogus") == -1);
  CHECK_THROWS_AS(SyslogEventSink({.address = "collector.example"}), std::invalid_argument);
  CHECK_THROWS_AS(SyslogEventSink({.facility = "nope"}), std::invalid_argument);
  CHECK_THROWS_AS(SyslogEventSink({.app_name = "two words"}), std::invalid_argument);
}

TEST_CASE("the rate cap lets a burst through per kind, then suppresses and summarizes") {
  auto sink = std::make_shared<CollectingSink>();
  SecurityEvents events({.sinks = {sink}, .rate_limit_per_kind = {.per_second = 1, .burst = 5}});
  for (int i = 0; i < 100; ++i) {
    SecurityEvent e;
    e.kind = SecurityEventKind::protocol_violation;
    events.report(std::move(e));
  }
  SecurityEvent other;
  other.kind = SecurityEventKind::ban;
  events.report(std::move(other));
  REQUIRE(events.flush());
  const auto got = sink->events();
  const SecurityEventsStats s = events.stats();
  const auto& pv = s.by_kind[static_cast<std::size_t>(SecurityEventKind::protocol_violation)];
  CHECK(pv.reported == 100);
  CHECK(pv.suppressed >= 94);  // 5 at once, maybe one more if a second passed
  CHECK(pv.suppressed <= 95);
  CHECK(pv.dropped == 0);
  CHECK(s.by_kind[static_cast<std::size_t>(SecurityEventKind::ban)].emitted == 1);
  REQUIRE(count_action(got, "events-suppressed") == 1);
  const auto summary = *std::find_if(got.begin(), got.end(), [](const SecurityEvent& e) { return e.action == "events-suppressed"; });
  CHECK(summary.kind == SecurityEventKind::protocol_violation);
  CHECK(summary.outcome == SecurityEventOutcome::unknown);
  CHECK(label(summary, "suppressed") == std::to_string(pv.suppressed));
  CHECK(label(summary, "dropped") == "0");
  CHECK(pv.emitted == 100 - pv.suppressed + 1);  // the summary counts as emitted
  // Nothing new since: no second summary.
  REQUIRE(events.flush());
  CHECK(count_action(sink->events(), "events-suppressed") == 1);
}

TEST_CASE("a full queue drops and counts, and never blocks the reporter") {
  auto sink = std::make_shared<CollectingSink>();
  SecurityEvents events({.sinks = {sink}, .queue_size = 4, .rate_limit_per_kind = {.per_second = 0}});
  sink->block();
  SecurityEvent first;
  first.kind = SecurityEventKind::rate_limited;
  events.report(std::move(first));
  REQUIRE(sink->wait_in_write());  // the background thread is stuck in the sink
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    SecurityEvent e;
    e.kind = SecurityEventKind::rate_limited;
    e.reason = std::to_string(i);
    events.report(std::move(e));
  }
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(500));
  CHECK(events.stats().total.dropped == 16);
  CHECK(events.stats().queued == 4);
  sink->release();
  REQUIRE(events.flush());
  const auto got = sink->events();
  CHECK(got.size() == 1 + 4 + 1);  // the first, the four queued, the summary
  CHECK(got[1].reason == "0");
  CHECK(got[4].reason == "3");
  CHECK(label(got.back(), "dropped") == "16");
  const auto s = events.stats();
  CHECK(s.total.reported == 21);
  CHECK(s.total.emitted == 6);
  CHECK(s.queued == 0);
}

TEST_CASE("stop writes what is queued; later reports are dropped") {
  auto sink = std::make_shared<CollectingSink>();
  SecurityEvents events({.sinks = {sink}, .rate_limit_per_kind = {.per_second = 0}});
  for (int i = 0; i < 50; ++i) events.report(SecurityEvent{});
  events.stop();
  CHECK(sink->events().size() == 50);
  events.report(SecurityEvent{});
  CHECK(events.stats().total.dropped == 1);
  CHECK(events.flush());
}

TEST_CASE("a sink that throws is counted and does not stop the others") {
  struct Throwing final : EventSink {
    void write(const SecurityEvent&, std::string_view) override { throw std::runtime_error("disk on fire"); }
  };
  auto good = std::make_shared<CollectingSink>();
  SecurityEvents events({.sinks = {std::make_shared<Throwing>(), good}, .logger = null_logger()});
  events.report(SecurityEvent{});
  REQUIRE(events.flush());
  CHECK(good->events().size() == 1);
  CHECK(events.stats().sink_errors == 1);
}

TEST_CASE("the file sink appends lines and reopens after rotation") {
  gatehouse::test::TempDir dir;
  const std::string path = (dir.dir / "events.log").string();
  auto sink = std::make_shared<FileEventSink>(FileEventSinkOptions{.path = path});
  SecurityEvents events({.sinks = {sink}, .format = SecurityEventFormat::cef});
  SecurityEvent a;
  a.reason = "first";
  events.report(std::move(a));
  REQUIRE(events.flush());
  REQUIRE(std::rename(path.c_str(), (path + ".1").c_str()) == 0);
  events.reopen();
  REQUIRE(events.flush());  // the reopen happened before the next event is written
  SecurityEvent b;
  b.reason = "second";
  events.report(std::move(b));
  REQUIRE(events.flush());
  auto read = [](const std::string& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  const std::string old_file = read(path + ".1"), new_file = read(path);
  CHECK(old_file.find("reason=first") != std::string::npos);
  CHECK(old_file.find("second") == std::string::npos);
  CHECK(new_file.find("reason=second") != std::string::npos);
  CHECK(new_file.starts_with("CEF:0|"));
  CHECK(new_file.ends_with("\n"));
}

TEST_CASE("Exchange::report fills in the request's facts; without a reporter it does nothing") {
  auto ex = gt::exchange("POST", "/api/orders?token=secret", {{"host", "example.com"}});
  ex.report(SecurityEvent{});  // no reporter: nothing happens
  gt::EventRecorder recorder;
  recorder.attach(ex);
  gt::set_route_name(ex, "orders");
  gt::set_peer(ex, asio::ip::tcp::endpoint(asio::ip::make_address("10.0.0.2"), 5555), true);
  gt::set_client_address(ex, asio::ip::make_address("198.51.100.7"));
  SecurityEvent e;
  e.kind = SecurityEventKind::rate_limited;
  e.rule_id = "per-client";
  ex.report(std::move(e));
  const auto got = recorder.events();
  REQUIRE(got.size() == 1);
  CHECK(got[0].route == "orders");
  CHECK(got[0].request_id == "test-id");
  CHECK(got[0].http_method == "POST");
  CHECK(got[0].url_path == "/api/orders");  // never the query
  CHECK(got[0].client_ip == asio::ip::make_address("198.51.100.7"));
  CHECK(got[0].peer->port() == 5555);
  CHECK(got[0].time != system_clock::time_point{});
  CHECK(got[0].rule_id == "per-client");
}

TEST_CASE("long strings are cut when reported, so a queued event has a bounded size") {
  gt::EventRecorder recorder;
  auto ex = gt::exchange("GET", "/" + std::string(5000, 'p'));
  recorder.attach(ex);
  SecurityEvent e;
  e.reason = std::string(5000, 'r');
  for (int i = 0; i < 40; ++i) e.label("k" + std::to_string(i), std::string(1000, 'v'));
  ex.report(std::move(e));
  const auto got = recorder.events();
  REQUIRE(got.size() == 1);
  CHECK(got[0].reason.size() == 1024);
  CHECK(got[0].url_path.size() == 1024);
  CHECK(got[0].labels.size() == 16);
  CHECK(got[0].labels[0].value.size() == 256);
}

namespace {
constexpr std::int64_t kNow = 1'700'000'000;
}

TEST_CASE("Authenticate reports a refused token with verifier and key id, never the token") {
  gt::FakeClock clock{gt::FakeClock::time_point{std::chrono::seconds{kNow}}};
  const auto key = gatehouse::test::TestKey::generate("ES256");
  auth::JwtVerifierOptions vo;
  vo.algorithms = {"ES256"};
  vo.issuers = {{"https://issuer.test", auth::StaticKeySource::from_jwks(key.jwks("k1").dump())}};
  vo.clock = &clock;
  auto verifier = std::make_shared<const auth::JwtVerifier>(std::move(vo));
  auto mw = std::make_shared<const Authenticate>(AuthenticateOptions{.verifiers = {verifier}, .logger = null_logger()});
  const std::string expired = gatehouse::test::make_token(
      key, {{"alg", "ES256"}, {"kid", "k1"}}, {{"iss", "https://issuer.test"}, {"sub", "mallory"}, {"exp", kNow - 3600}});

  gt::EventRecorder recorder;
  auto ex = gt::exchange("GET", "/orders", {{"authorization", "Bearer " + expired}});
  recorder.attach(ex);
  gt::set_route_name(ex, "orders");
  const auto r = gt::run_chain({mw}, ex);
  CHECK(r.status == 401);
  const auto lines = recorder.lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find(expired) == std::string::npos);
  CHECK(lines[0].find(expired.substr(expired.rfind('.') + 1)) == std::string::npos);  // not even the signature
  const json j = json::parse(lines[0]);
  CHECK(j["event"]["action"] == "authentication-failure");
  CHECK(j["event"]["outcome"] == "failure");
  CHECK(j["labels"]["verifier"] == "jwt");
  CHECK(j["labels"]["key_id"] == "k1");
  CHECK(j["labels"]["route"] == "orders");
  CHECK(j["http"]["response"]["status_code"] == 401);
  CHECK(j["event"]["reason"].get<std::string>().find("expired") != std::string::npos);
  CHECK_FALSE(j.contains("user"));  // the subject of a refused token is not trusted

  SUBCASE("no credential at all") {
    auto bare = gt::exchange("GET", "/orders");
    recorder.attach(bare);
    CHECK(gt::run_chain({mw}, bare).status == 401);
    const auto got = recorder.events();
    REQUIRE(got.size() == 2);
    CHECK(got[1].reason == "no credential in the request");
  }
}

TEST_CASE("Authorize reports a denial with the rule and the missing scopes") {
  auto mw = std::make_shared<const Authorize>(AuthorizeOptions{.rule = Rule::require_scopes({"orders:write"})});
  gt::EventRecorder recorder;
  auto ex = gt::exchange("DELETE", "/orders/7");
  recorder.attach(ex);
  ex.emplace<auth::Claims>(auth::Claims(json{{"sub", "bob"}, {"scope", "orders:read"}}));
  CHECK(gt::run_chain({mw}, ex).status == 403);
  const auto got = recorder.events();
  REQUIRE(got.size() == 1);
  CHECK(got[0].kind == SecurityEventKind::authorization_denied);
  CHECK(got[0].user_name == "bob");
  CHECK(got[0].rule_name == "scopes(orders:write)");
  CHECK(label(got[0], "missing_scopes") == "orders:write");
  CHECK(got[0].http_status == 403);
}
