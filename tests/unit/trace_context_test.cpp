// W3C Trace Context Level 1: traceparent and tracestate parsing (the specification's examples and
// the cases of its test suite), and the listener policy as the gateway applies it. No sockets.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "gatehouse/security_event.hpp"
#include "gatehouse/testing.hpp"
#include "observe/trace_context.hpp"

using namespace gatehouse;
namespace gt = gatehouse::testing;
using detail::normalize_tracestate;
using detail::parse_traceparent;

namespace {

constexpr std::string_view kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kParentId = "00f067aa0ba902b7";
const std::string kValid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

bool valid(std::string_view v) { return parse_traceparent(v).has_value(); }

// The tracestate normalize_tracestate makes of these field values; "<invalid>" when it refuses.
std::string state_of(std::initializer_list<std::string_view> values) {
  Headers h;
  for (auto v : values) h.add("tracestate", v);
  std::string out = "unchanged";
  return normalize_tracestate(h, out) ? out : "<invalid>";
}

bool lower_hex(std::string_view s) {
  return s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

}  // namespace

TEST_CASE("traceparent: the specification's example parses into its fields") {
  const auto tp = parse_traceparent(kValid);
  REQUIRE(tp);
  CHECK(tp->version == 0);
  CHECK(std::string_view(tp->trace_id, 32) == kTraceId);
  CHECK(std::string_view(tp->parent_id, 16) == kParentId);
  CHECK(tp->flags == 1);
  CHECK(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")->flags == 0);
  // OWS around the value is not part of it.
  CHECK(valid(" \t" + kValid + "\t "));
}

TEST_CASE("traceparent version 00 is strict") {
  CHECK_FALSE(valid(kValid + "-"));
  CHECK_FALSE(valid(kValid + "-what-the-future-will-be-like"));
  CHECK_FALSE(valid(kValid + "0"));
  CHECK_FALSE(valid(kValid.substr(0, 54)));
  CHECK_FALSE(valid(""));
  // Lowercase hex only, everywhere.
  CHECK_FALSE(valid("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01"));
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A"));
  CHECK_FALSE(valid("0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  // All-zero ids are invalid.
  CHECK_FALSE(valid("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
}

TEST_CASE("traceparent: illegal characters and wrong lengths in each field") {
  // version
  CHECK_FALSE(valid(".0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid("0.-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid("000-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid("0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  // trace-id
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e473.-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e47360-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"));
  // parent-id
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b.-01"));
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bg-01"));
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b70-01"));
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01"));
  // trace-flags
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-.0"));
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0."));
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-001"));
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"));
  // separators
  CHECK_FALSE(valid("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01"));
  CHECK_FALSE(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01"));
}

TEST_CASE("traceparent: a higher version is read by the version 00 layout, ff is invalid") {
  const auto future = parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like");
  REQUIRE(future);
  CHECK(future->version == 0xcc);
  CHECK(std::string_view(future->trace_id, 32) == kTraceId);
  CHECK(future->flags == 1);
  CHECK(valid("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CHECK(valid("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09"));
  CHECK_FALSE(valid("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what-the-future-will-be-like"));
  CHECK_FALSE(valid("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"));
  CHECK_FALSE(valid("cc-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"));
}

TEST_CASE("tracestate: list members, OWS, empty members, several fields") {
  CHECK(state_of({"congo=t61rcWkgMzE"}) == "congo=t61rcWkgMzE");
  CHECK(state_of({"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"}) == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  CHECK(state_of({"foo=1 \t , \t bar=2, \t baz=3"}) == "foo=1,bar=2,baz=3");
  CHECK(state_of({""}) == "");
  CHECK(state_of({",, ,\t,"}) == "");
  CHECK(state_of({"foo=1", "bar=2"}) == "foo=1,bar=2");  // one list, in field order
  CHECK(state_of({"foo=1,", ",bar=2"}) == "foo=1,bar=2");
  // Multi-tenant keys, and a value's inner spaces.
  CHECK(state_of({"fw529a3039@dt=ZmIzYjA4MmZ", "1tenant@sys=a b"}) == "fw529a3039@dt=ZmIzYjA4MmZ,1tenant@sys=a b");
  // Every allowed character.
  std::string value;
  for (char c = 0x20; c < 0x7f; ++c)
    if (c != ',' && c != '=') value += c;
  const std::string all = "abcdefghijklmnopqrstuvwxyz0123456789_-*/=" + value.substr(1) + " x";
  CHECK(state_of({all}) == all);
}

TEST_CASE("tracestate: invalid lists are refused whole") {
  for (const char* bad : {"foo =1", "FOO=1", "foo.bar=1", "foo@=1,bar=2", "@foo=1,bar=2", "foo@@bar=1,bar=2",
                          "foo@bar@baz=1,bar=2", "foo=1,foo=1", "foo=bar=baz", "foo=,bar=3", "foo", "=1",
                          "1foo=1", "foo=\x01", "foo=caf\xc3\xa9"}) {
    CAPTURE(bad);
    CHECK(state_of({bad}) == "<invalid>");
  }
  CHECK(state_of({"foo=1", "foo=2"}) == "<invalid>");  // duplicate keys across fields too
}

TEST_CASE("tracestate: at most 32 members, key lengths by the grammar") {
  std::string list;
  for (int i = 0; i < 32; ++i) list += (i ? "," : "") + std::string("k") + std::to_string(i) + "=v";
  CHECK(state_of({list}) == list);
  CHECK(state_of({list + ",k32=v"}) == "<invalid>");
  CHECK(state_of({list, "k32=v"}) == "<invalid>");

  CHECK(state_of({std::string(256, 'k') + "=1"}) != "<invalid>");
  CHECK(state_of({std::string(257, 'k') + "=1"}) == "<invalid>");
  CHECK(state_of({std::string(241, 't') + "@" + std::string(14, 's') + "=1"}) != "<invalid>");
  CHECK(state_of({std::string(242, 't') + "@" + std::string(14, 's') + "=1"}) == "<invalid>");
  CHECK(state_of({std::string(241, 't') + "@" + std::string(15, 's') + "=1"}) == "<invalid>");
  CHECK(state_of({"k=" + std::string(256, 'v')}) != "<invalid>");
  CHECK(state_of({"k=" + std::string(257, 'v')}) == "<invalid>");
}

TEST_CASE("tracestate: a long list is cut to 512 bytes, long members first, then from the end") {
  const std::string a = "a=" + std::string(98, 'x'), b = "b=" + std::string(198, 'x'), c = "c=" + std::string(98, 'x'),
                    d = "d=" + std::string(148, 'x'), e = "e=" + std::string(98, 'x');
  // 664 bytes: b (over 128) goes, and the rest fits.
  CHECK(state_of({a + "," + b + "," + c + "," + d + "," + e}) == a + "," + c + "," + d + "," + e);
  // Six members of 100 (605 bytes): the last goes.
  std::string six, five;
  for (char k = 'a'; k < 'g'; ++k) {
    const std::string m = std::string(1, k) + "=" + std::string(98, 'x');
    six += (six.empty() ? "" : ",") + m;
    if (k < 'f') five += (five.empty() ? "" : ",") + m;
  }
  CHECK(state_of({six}) == five);
  CHECK(state_of({six}).size() <= detail::kMaxTracestateBytes);
}

TEST_CASE("trace policy: continues a valid traceparent with a new span and forwards tracestate") {
  auto ex = gt::exchange("GET", "/", {{"traceparent", kValid}, {"tracestate", "congo=t61rcWkgMzE , rojo=00f067aa0ba902b7"}});
  gt::apply_trace_context(ex, {.continue_from = TraceContinue::all});
  const TraceContext& tc = ex.trace();
  REQUIRE(tc.active());
  CHECK(tc.continued());
  CHECK(ex.trace_id() == kTraceId);
  CHECK(tc.parent_id() == kParentId);
  CHECK(tc.sampled());
  REQUIRE(ex.span_id().size() == 16);
  CHECK(lower_hex(ex.span_id()));
  CHECK(ex.span_id() != kParentId);
  const Headers& h = ex.request().headers();
  CHECK(h.count("traceparent") == 1);
  CHECK(h.get("traceparent") == "00-" + std::string(kTraceId) + "-" + std::string(ex.span_id()) + "-01");
  CHECK(tc.traceparent() == h.get("traceparent"));
  CHECK(h.get("tracestate") == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
}

TEST_CASE("trace policy: an invalid traceparent is replaced by a new trace, its tracestate dropped") {
  for (const std::string bad : {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "garbage\r\nx: y"}) {
    CAPTURE(bad);
    auto ex = gt::exchange("GET", "/", {{"traceparent", bad}, {"tracestate", "foo=1"}});
    gt::apply_trace_context(ex, {.continue_from = TraceContinue::all});
    CHECK_FALSE(ex.trace().continued());
    CHECK(ex.trace().parent_id().empty());
    REQUIRE(ex.trace_id().size() == 32);
    CHECK(lower_hex(ex.trace_id()));
    const auto sent = ex.request().headers().get("traceparent");
    REQUIRE(sent);
    CHECK(valid(*sent));
    CHECK(sent->find(ex.trace_id()) == 3);
    CHECK_FALSE(ex.request().headers().contains("tracestate"));
  }
}

TEST_CASE("trace policy: two traceparent fields are invalid; an invalid tracestate alone is dropped") {
  auto twice = gt::exchange("GET", "/", {{"traceparent", kValid}, {"traceparent", kValid}});
  gt::apply_trace_context(twice, {.continue_from = TraceContinue::all});
  CHECK_FALSE(twice.trace().continued());
  CHECK(twice.request().headers().count("traceparent") == 1);

  auto bad_state = gt::exchange("GET", "/", {{"traceparent", kValid}, {"tracestate", "foo=1,foo=2"}});
  gt::apply_trace_context(bad_state, {.continue_from = TraceContinue::all});
  CHECK(bad_state.trace().continued());
  CHECK_FALSE(bad_state.request().headers().contains("tracestate"));

  auto no_parent = gt::exchange("GET", "/", {{"tracestate", "foo=1"}});
  gt::apply_trace_context(no_parent, {.continue_from = TraceContinue::all});
  CHECK_FALSE(no_parent.trace().continued());
  CHECK_FALSE(no_parent.request().headers().contains("tracestate"));
}

TEST_CASE("trace policy: never, and trusted sources only") {
  auto never = gt::exchange("GET", "/", {{"traceparent", kValid}, {"tracestate", "foo=1"}});
  gt::apply_trace_context(never, {.continue_from = TraceContinue::never});
  CHECK_FALSE(never.trace().continued());
  CHECK(never.trace_id() != kTraceId);
  CHECK_FALSE(never.request().headers().contains("tracestate"));

  const TraceContextOptions trusted{.continue_from = TraceContinue::trusted, .trusted_sources = {"10.0.0.0/8"}};
  auto outsider = gt::exchange("GET", "/", {{"traceparent", kValid}});  // peer 127.0.0.1
  gt::apply_trace_context(outsider, trusted);
  CHECK_FALSE(outsider.trace().continued());
  CHECK(outsider.trace_id() != kTraceId);

  auto insider = gt::exchange("GET", "/", {{"traceparent", kValid}});
  gt::set_peer(insider, {asio::ip::make_address("10.1.2.3"), 5000});
  gt::apply_trace_context(insider, trusted);
  CHECK(insider.trace().continued());
  CHECK(insider.trace_id() == kTraceId);

  // The default (trusted, no sources given here): no one's trace is continued.
  auto plain = gt::exchange("GET", "/", {{"traceparent", kValid}});
  gt::apply_trace_context(plain);
  CHECK_FALSE(plain.trace().continued());
}

TEST_CASE("trace policy: the sampled flag is the caller's, or the configured one for new traces") {
  auto unsampled = gt::exchange("GET", "/", {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}});
  gt::apply_trace_context(unsampled, {.continue_from = TraceContinue::all});
  CHECK_FALSE(unsampled.trace().sampled());
  CHECK(unsampled.request().headers().get("traceparent")->ends_with("-00"));

  // Only the sampled bit is defined by Level 1: other bits are not passed on.
  auto other_bits = gt::exchange("GET", "/", {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff"}});
  gt::apply_trace_context(other_bits, {.continue_from = TraceContinue::all});
  CHECK(other_bits.request().headers().get("traceparent")->ends_with("-01"));

  // A later version is answered with version 00.
  auto future = gt::exchange("GET", "/", {{"traceparent", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"}});
  gt::apply_trace_context(future, {.continue_from = TraceContinue::all});
  CHECK(future.trace().continued());
  CHECK(future.request().headers().get("traceparent")->size() == 55);
  CHECK(future.request().headers().get("traceparent")->starts_with("00-4bf92f35"));

  auto fresh = gt::exchange("GET", "/");
  gt::apply_trace_context(fresh, {.sample_new = false});
  CHECK_FALSE(fresh.trace().sampled());
  CHECK(fresh.request().headers().get("traceparent")->ends_with("-00"));
  auto fresh_sampled = gt::exchange("GET", "/");
  gt::apply_trace_context(fresh_sampled);
  CHECK(fresh_sampled.trace().sampled());
}

TEST_CASE("trace policy: off leaves the fields alone; new ids are distinct and never zero") {
  auto off = gt::exchange("GET", "/", {{"traceparent", "junk"}});
  gt::apply_trace_context(off, {.enabled = false});
  CHECK_FALSE(off.trace().active());
  CHECK(off.trace_id().empty());
  CHECK(off.span_id().empty());
  CHECK(off.trace().traceparent().empty());
  CHECK(off.request().headers().get("traceparent") == "junk");

  std::set<std::string> traces, spans;
  for (int i = 0; i < 1000; ++i) {
    auto ex = gt::exchange("GET", "/");
    gt::apply_trace_context(ex);
    CHECK(valid(*ex.request().headers().get("traceparent")));
    traces.emplace(ex.trace_id());
    spans.emplace(ex.span_id());
  }
  CHECK(traces.size() == 1000);
  CHECK(spans.size() == 1000);
}

TEST_CASE("Exchange::report fills the trace id of the request") {
  gt::EventRecorder recorder;
  auto ex = gt::exchange("GET", "/orders", {{"traceparent", kValid}});
  gt::apply_trace_context(ex, {.continue_from = TraceContinue::all});
  recorder.attach(ex);
  ex.report(SecurityEvent{.kind = SecurityEventKind::authorization_denied});
  ex.report(SecurityEvent{.kind = SecurityEventKind::authorization_denied, .trace_id = "kept"});
  const auto events = recorder.events();
  REQUIRE(events.size() == 2);
  CHECK(events[0].trace_id == kTraceId);
  CHECK(events[1].trace_id == "kept");
  CHECK(recorder.lines()[0].find("\"trace\":{\"id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}") != std::string::npos);
}
