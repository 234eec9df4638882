// The WAF middleware with the real OWASP CRS (Debian's modsecurity-crs), driven through the
// gateway's pipeline without sockets. The CRS loads once for the whole program (shared instances).
#include <doctest/doctest.h>

#include <fstream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>
#include "gatehouse/config.hpp"
#include "gatehouse/middleware/waf.hpp"
#include "gatehouse/security_event.hpp"
#include "gatehouse/testing.hpp"
#include "support/temp_dir.hpp"

using namespace gatehouse;
namespace gt = gatehouse::testing;

namespace {

std::shared_ptr<const Waf> crs_waf() {
  static auto waf = [] {
    WafOptions o;
    o.routes["cms"].exclude.ranges = {{941000, 941999}};  // XSS rules off for this route
    o.routes["legacy"].mode = WafMode::detect;
    o.routes["health"].enabled = false;
    o.time_limit = std::chrono::seconds(60);  // a busy test machine must not turn verdicts into 503s
    o.rules = "SecRule ARGS:token \"@streq forbidden\" \"id:10001,phase:2,deny,status:403,log,msg:'custom token rule'\"";
    return std::make_shared<const Waf>(o);
  }();
  return waf;
}

struct Outcome {
  unsigned status = 0;
  bool reached = false;
  std::vector<SecurityEvent> events;
  std::string upstream_body;
};

Outcome send(std::string_view method, std::string_view target,
             std::initializer_list<std::pair<std::string_view, std::string_view>> headers, std::string_view body = {},
             std::string_view route = "api", std::shared_ptr<const Waf> waf = crs_waf()) {
  gt::EventRecorder recorder;
  auto ex = gt::exchange(method, target, headers);
  // What every browser and HTTP client sends (the CRS scores requests without them).
  ex.request().headers().add("host", "api.example.com");
  ex.request().headers().add("accept", "*/*");
  ex.request().headers().add("user-agent", "curl/7.88.1");
  if (!body.empty()) ex.request().headers().add("content-length", std::to_string(body.size()));
  gt::set_route_name(ex, route);
  recorder.attach(ex);
  gt::FakeUpstream up;
  auto r = gt::run_chain({waf}, ex, &up, body);
  Outcome o{r.status, r.reached_upstream, recorder.events(), {}};
  if (!up.received().empty()) o.upstream_body = up.received().front().body;
  return o;
}

std::string multipart(std::string_view field_value) {
  return "--XyZ\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\n" + std::string(field_value) +
         "\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
         "Content-Type: text/plain\r\n\r\nplain file\r\n--XyZ--\r\n";
}

bool has_rule_in(const SecurityEvent& e, std::string_view prefix) {
  for (const auto& l : e.labels)
    if (l.key == "rule_ids") return l.value.find(prefix) != std::string::npos;
  return false;
}

std::string label(const SecurityEvent& e, std::string_view key) {
  for (const auto& l : e.labels)
    if (l.key == key) return l.value;
  return {};
}

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kForm = "application/x-www-form-urlencoded";

}  // namespace

TEST_CASE("CRS blocks common attacks in every part of a request") {
  struct Attack {
    const char* what;
    std::string method, target;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    const char* family;  // CRS rule file prefix expected among the matches
  };
  const std::vector<Attack> attacks = {
      {"SQLi in query", "GET", "/search?q=1%27%20OR%20%271%27%3D%271", {}, "", "942"},
      {"XSS in query", "GET", "/search?q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E", {}, "", "941"},
      {"path traversal in path", "GET", "/static/..%2f..%2f..%2f..%2fetc%2fpasswd", {}, "", "930"},
      {"path traversal in query", "GET", "/download?file=../../../../etc/passwd", {}, "", "930"},
      {"shell command in query", "GET", "/ping?host=127.0.0.1%3Bcat%20%2Fetc%2Fpasswd", {}, "", "932"},
      {"scanner user agent", "GET", "/", {{"user-agent", "sqlmap/1.7.2#stable (https://sqlmap.org)"}}, "", "913"},
      {"SQLi in a header", "GET", "/", {{"referer", "1' UNION SELECT password FROM users--"}}, "", "942"},
      {"SQLi in a cookie", "GET", "/", {{"cookie", "session=1' UNION SELECT password FROM users--"}}, "", "942"},
      {"XSS in a form body", "POST", "/comments", {{"content-type", std::string(kForm)}},
       "name=bob&comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "941"},
      {"SQLi in a JSON body", "POST", "/api/items", {{"content-type", std::string(kJson)}},
       R"({"filter":"1' UNION SELECT username, password FROM users--"})", "942"},
      {"RCE in a JSON body", "POST", "/api/items", {{"content-type", std::string(kJson)}},
       R"({"cmd":"; /bin/cat /etc/passwd"})", "932"},
      {"XSS in a multipart body", "POST", "/upload", {{"content-type", "multipart/form-data; boundary=XyZ"}},
       multipart("<script>alert(1)</script>"), "941"},
  };
  for (const auto& a : attacks) {
    const std::string what = a.what;
    CAPTURE(what);
    gt::EventRecorder recorder;
    auto ex = gt::exchange(a.method, a.target);
    for (const auto& [n, v] : a.headers) ex.request().headers().add(n, v);
    if (!a.body.empty()) ex.request().headers().add("content-length", std::to_string(a.body.size()));
    gt::set_route_name(ex, "api");
    recorder.attach(ex);
    auto r = gt::run_chain({crs_waf()}, ex, nullptr, a.body);
    CHECK(r.status == 403);
    CHECK_FALSE(r.reached_upstream);
    const auto events = recorder.events();
    REQUIRE(events.size() == 1);
    const SecurityEvent& e = events[0];
    CHECK(e.kind == SecurityEventKind::waf_match);
    CHECK(e.action == "waf-blocked");
    CHECK(e.http_status == 403);
    CHECK(e.request_id == "test-id");
    CHECK(e.route == "api");
    CHECK(has_rule_in(e, a.family));
    CHECK(has_rule_in(e, "949110"));  // the CRS anomaly threshold decided
    CHECK(std::stoi(label(e, "anomaly_score")) >= 5);
    CHECK(label(e, "severity") == "CRITICAL");
    CHECK_FALSE(e.reason.empty());
  }
}

TEST_CASE("ordinary API traffic passes the CRS untouched") {
  std::string base64;
  for (int i = 0; i < 3000; ++i) base64 += "QUJDRGVmZ2hpams0NTY3OA+/"[i % 24];
  base64 += "==";
  std::string large = R"({"items":[)";
  for (int i = 0; i < 1200; ++i) {
    if (i) large += ',';
    large += R"({"id":)" + std::to_string(i) + R"(,"name":"item )" + std::to_string(i) +
             R"(","note":"ordinary text, nothing to see","price":12.5})";
  }
  large += "]}";
  REQUIRE(large.size() > 64 * 1024);
  struct Clean {
    const char* what;
    std::string method, target, content_type, body;
  };
  const std::vector<Clean> clean = {
      {"a plain GET", "GET", "/api/users/42?include=orders&sort=-created_at&page=2", "", ""},
      {"JSON with quotes and apostrophes", "POST", "/api/notes", std::string(kJson),
       R"({"author":"O'Brien","text":"He said \"it's fine\", didn't he? Let's go.","tags":["rock 'n' roll"]})"},
      {"Korean UTF-8 text", "POST", "/api/messages", std::string(kJson),
       R"({"message":"안녕하세요, 세계! 오늘 회의는 3시에 시작합니다.","lang":"ko"})"},
      {"a base64 payload", "POST", "/api/files", std::string(kJson), R"({"name":"a.bin","data":")" + base64 + "\"}"},
      {"a large JSON body", "PUT", "/api/items/bulk", std::string(kJson), large},
      {"a form with an apostrophe", "POST", "/profile", std::string(kForm), "name=Ren%C3%A9e&bio=I%27m+a+baker"},
      {"DELETE", "DELETE", "/api/items/7", "", ""},
      {"PATCH with JSON", "PATCH", "/api/items/7", std::string(kJson), R"({"price":13})"},
  };
  for (const auto& c : clean) {
    const std::string what = c.what;
    CAPTURE(what);
    auto ex = gt::exchange(c.method, c.target, {{"host", "api.example.com"}, {"accept", "application/json"},
                                                {"user-agent", "curl/7.88.1"}});
    if (!c.content_type.empty()) ex.request().headers().add("content-type", c.content_type);
    if (!c.body.empty()) ex.request().headers().add("content-length", std::to_string(c.body.size()));
    gt::set_route_name(ex, "api");
    gt::EventRecorder recorder;
    recorder.attach(ex);
    gt::FakeUpstream up;
    auto r = gt::run_chain({crs_waf()}, ex, &up, c.body);
    CHECK(r.status == 200);
    REQUIRE(up.received().size() == 1);
    CHECK(up.received()[0].body == c.body);  // read ahead for the rules, forwarded whole
    for (const auto& e : recorder.events()) CAPTURE(label(e, "rule_ids"));
    CHECK(recorder.events().empty());
  }
}

TEST_CASE("per-route settings: exclusions, detect mode, routes left out") {
  const std::string xss = "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E";
  CHECK(send("GET", xss, {}, {}, "api").status == 403);
  // The XSS rules are excluded on "cms".
  auto cms = send("GET", xss, {}, {}, "cms");
  CHECK(cms.status == 200);
  // "legacy" only detects: the request passes and the event says what would have been refused.
  auto legacy = send("GET", xss, {}, {}, "legacy");
  CHECK(legacy.status == 200);
  REQUIRE(legacy.events.size() == 1);
  CHECK(legacy.events[0].action == "waf-detected");
  CHECK(legacy.events[0].outcome == SecurityEventOutcome::unknown);
  CHECK(label(legacy.events[0], "mode") == "detect");
  CHECK(has_rule_in(legacy.events[0], "941"));
  // "health" is not inspected at all.
  auto health = send("GET", xss, {}, {}, "health");
  CHECK(health.status == 200);
  CHECK(health.events.empty());
}

TEST_CASE("the user's own SecRule runs beside the CRS") {
  auto r = send("GET", "/api?token=forbidden", {});
  CHECK(r.status == 403);
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].rule_id == "10001");
  CHECK(r.events[0].rule_name == "custom token rule");
  CHECK(send("GET", "/api?token=fine", {}).status == 200);
}

TEST_CASE("bodies over the inspection limit: rejected, or their first part inspected") {
  WafOptions o;
  o.time_limit = std::chrono::seconds(60);
  o.request_body_limit = 1024;
  auto reject = std::make_shared<const Waf>(o);
  std::string body = "note=" + std::string(2000, 'a');
  auto r = send("POST", "/notes", {{"content-type", kForm}}, body, "api", reject);
  CHECK(r.status == 413);
  CHECK_FALSE(r.reached);
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].reason == "request body over the WAF inspection limit");

  o.oversize_body = WafOversizeBody::inspect_prefix;
  auto prefix = std::make_shared<const Waf>(o);
  // An attack within the first 1024 bytes is seen; one past them is not (documented policy).
  std::string early = "q=1%27%20UNION%20SELECT%20password%20FROM%20users--&pad=" + std::string(2000, 'a');
  CHECK(send("POST", "/notes", {{"content-type", kForm}}, early, "api", prefix).status == 403);
  std::string late = "pad=" + std::string(2000, 'a') + "&q=1%27%20UNION%20SELECT%20password%20FROM%20users--";
  auto passed = send("POST", "/notes", {{"content-type", kForm}}, late, "api", prefix);
  CHECK(passed.status == 200);
  CHECK(passed.upstream_body == late);  // the whole body still reaches the upstream
  // A JSON body cut at the limit does not parse; that alone is no reason to refuse it.
  std::string json = R"({"text":")" + std::string(3000, 'b') + "\"}";
  CHECK(send("POST", "/notes", {{"content-type", kJson}}, json, "api", prefix).status == 200);
}

TEST_CASE("a body that does not parse is refused (its arguments would escape inspection)") {
  auto r = send("POST", "/api/items", {{"content-type", kJson}}, R"({"a": "1' OR 1=1 --" )");
  CHECK(r.status == 400);
  CHECK_FALSE(r.reached);
}

TEST_CASE("detect mode reports and lets everything through") {
  WafOptions o;
  o.time_limit = std::chrono::seconds(60);
  o.mode = WafMode::detect;
  auto waf = std::make_shared<const Waf>(o);
  auto r = send("GET", "/search?q=1%27%20OR%20%271%27%3D%271", {}, {}, "api", waf);
  CHECK(r.status == 200);
  CHECK(r.reached);
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].action == "waf-detected");
  CHECK(waf->stats().detected == 1);
  CHECK(waf->stats().blocked == 0);
}

TEST_CASE("response headers can be inspected (phase 3)") {
  WafOptions o;
  o.crs = false;
  o.inspect_response_headers = true;
  o.rules = "SecRule RESPONSE_HEADERS:X-Debug-Token \"@rx .\" \"id:10002,phase:3,deny,status:403,log,"
            "msg:'internal debug header leaked'\"";
  auto waf = std::make_shared<const Waf>(o);
  gt::FakeUpstream up;
  Response leaky(Status::ok);
  leaky.headers().add("x-debug-token", "abc123");
  up.respond_with(std::move(leaky), "secret page");
  gt::EventRecorder recorder;
  auto ex = gt::exchange("GET", "/page");
  recorder.attach(ex);
  auto r = gt::run_chain({waf}, ex, &up);
  CHECK(r.status == 502);
  CHECK(r.body.find("secret page") == std::string::npos);
  REQUIRE(recorder.events().size() == 1);
  CHECK(recorder.events()[0].rule_id == "10002");
  auto ex2 = gt::exchange("GET", "/page");
  CHECK(gt::run_chain({waf}, ex2).status == 200);
}

TEST_CASE("past the time limit the request is refused, or passed when failing open") {
  WafOptions o;
  o.request_body_limit = 512 * 1024;
  o.time_limit = std::chrono::milliseconds(1);
  auto closed = std::make_shared<const Waf>(o);
  // Thousands of arguments keep the CRS busy far longer than 1 ms.
  std::string body;
  for (int i = 0; i < 2000; ++i) body += "field" + std::to_string(i) + "=some+ordinary+value&";
  auto r = send("POST", "/bulk", {{"content-type", kForm}}, body, "api", closed);
  CHECK(r.status == 503);
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].action == "waf-overloaded");
  CHECK(closed->stats().overloaded == 1);
  o.fail_open = true;
  auto open = std::make_shared<const Waf>(o);
  auto passed = send("POST", "/bulk", {{"content-type", kForm}}, body, "api", open);
  CHECK(passed.status == 200);
  REQUIRE(passed.events.size() == 1);
  CHECK(passed.events[0].action == "waf-fail-open");
}

TEST_CASE("a broken rule file is a clear error at load time") {
  gatehouse::test::TempDir dir;
  const std::string file = (dir.dir / "broken.conf").string();
  std::ofstream(file) << "SecRule ARGS \"@rx x\" \"id:20001,phase:2,deny,no_such_action\"\n";
  WafOptions o;
  o.crs = false;
  o.rule_files = {file};
  try {
    Waf waf(o);
    FAIL("a broken rule file loaded");
  } catch (const WafError& e) {
    CHECK(std::string(e.what()).find("broken.conf") != std::string::npos);
    CHECK(std::string(e.what()).find("Line: 1") != std::string::npos);
  }
  std::ofstream(file) << "SecRul ARGS \"@rx x\" \"id:20001,phase:2,deny\"\n";
  CHECK_THROWS_AS(Waf{o}, WafError);
  o.rule_files = {(dir.dir / "missing.conf").string()};
  CHECK_THROWS_AS(Waf{o}, WafError);
  WafOptions bad;
  bad.paranoia_level = 5;
  CHECK_THROWS_AS(Waf{bad}, std::invalid_argument);
}

TEST_CASE("config: the waf middleware from JSON, errors at the offending key") {
  auto registry = MiddlewareRegistry::with_builtins();
  auto make = [&](const std::string& text) {
    return registry.create("waf", nlohmann::json::parse(text), "/middleware/0/options");
  };
  auto mw = make(R"({"mode":"detect","paranoia_level":2,"crs":false,"exclude_rules":[942100,"920000-920999"],
                     "routes":{"cms":{"exclude_rules":["941100"],"mode":"block"},"health":{"enabled":false}},
                     "request_body_limit":65536,"oversize_body":"inspect_prefix","threads":1,"queue_size":8,
                     "time_limit_ms":250,"fail_open":true,"inspect_response_headers":true})");
  const auto* waf = dynamic_cast<const Waf*>(mw.get());
  REQUIRE(waf);
  const WafOptions& o = waf->options();
  CHECK(o.mode == WafMode::detect);
  CHECK(o.paranoia_level == 2);
  CHECK(o.exclude.ids == std::vector<int>{942100});
  CHECK(o.exclude.ranges == std::vector<std::pair<int, int>>{{920000, 920999}});
  CHECK(o.routes.at("cms").mode == WafMode::block);
  CHECK(o.routes.at("cms").exclude.ids == std::vector<int>{941100});
  CHECK_FALSE(o.routes.at("health").enabled);
  CHECK(o.oversize_body == WafOversizeBody::inspect_prefix);
  CHECK(o.time_limit == std::chrono::milliseconds(250));
  CHECK(o.fail_open);

  auto error_of = [&](const std::string& text) {
    try {
      make(text);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_of(R"({"mode":"block-all"})").find("/middleware/0/options/mode") != std::string::npos);
  CHECK(error_of(R"({"paranoia_level":7})").find("paranoia_level") != std::string::npos);
  CHECK(error_of(R"({"exclude_rules":["5-2"]})").find("ends before it starts") != std::string::npos);
  CHECK(error_of(R"({"rule_files":["/nonexistent/rules.conf"]})").find("rule_files/0") != std::string::npos);
  CHECK(error_of(R"({"crs":false,"rules":"SecRule ARGS \"@rx x\" \"id:1,bogus\""})").find("WAF rules do not load") !=
        std::string::npos);
  CHECK(error_of(R"({"oversize_body":"truncate"})").find("inspect_prefix") != std::string::npos);
  CHECK(error_of(R"({"routes":{"a":{"mode":"x"}}})").find("/routes/a/mode") != std::string::npos);
}
