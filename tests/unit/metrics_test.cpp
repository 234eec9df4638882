// The metrics registry without sockets: shards summed at scrape time, histogram buckets, label
// escaping, the cardinality cap, callbacks and the text format.
#include <doctest/doctest.h>

#include <gatehouse/auth/token_error.hpp>
#include <gatehouse/metrics.hpp>

#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "observe/gateway_metrics.hpp"
#include "observe/metrics_text.hpp"

using namespace gatehouse;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

}  // namespace

TEST_CASE("metrics: counters in several shards are summed at scrape time") {
  auto r = std::make_shared<MetricsRegistry>();
  Counter c = r->counter({"test_events_total", "Events.", {"kind"}});
  const MetricSeries a = c.series({"a"});
  constexpr int kThreads = 4, kPerThread = 100000;
  std::vector<MetricsShard*> shards;
  for (int i = 0; i < kThreads; ++i) shards.push_back(&r->add_shard());
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < kPerThread; ++k) c.inc(*shards[i], a);
      c.inc(*shards[i], {"b"}, 2);  // looked up in the shard's own cache
    });
  }
  // A scrape while the writers run sees some consistent prefix, never garbage.
  const std::string during = r->render_prometheus();
  CHECK(during.find("# TYPE test_events_total counter") != std::string::npos);
  for (auto& t : threads) t.join();
  const std::string text = r->render_prometheus();
  CAPTURE(text);
  CHECK(has_line(text, "# HELP test_events_total Events."));
  CHECK(has_line(text, "test_events_total{kind=\"a\"} 400000"));
  CHECK(has_line(text, "test_events_total{kind=\"b\"} 8"));
}

TEST_CASE("metrics: a shard added after the family, and a family declared after the shard") {
  auto r = std::make_shared<MetricsRegistry>();
  MetricsShard& early = r->add_shard();
  Counter late_family = r->counter({"test_late_total", "Late.", {}});
  MetricsShard& late_shard = r->add_shard();
  late_family.inc(early, late_family.series());
  late_family.inc(late_shard, late_family.series(), 2);
  CHECK(has_line(r->render_prometheus(), "test_late_total 3"));
}

TEST_CASE("metrics: gauges sum their shards' parts; set() sets one part") {
  auto r = std::make_shared<MetricsRegistry>();
  Gauge g = r->gauge({"test_open", "Open things.", {"where"}});
  MetricsShard& s1 = r->add_shard();
  MetricsShard& s2 = r->add_shard();
  const MetricSeries x = g.series({"x"});
  g.add(s1, x, 3);
  g.add(s1, x, -1);
  g.add(s2, x, 0.5);
  const MetricSeries y = g.series({"y"});  // a gauge at zero is a value: it is shown
  std::string text = r->render_prometheus();
  CAPTURE(text);
  CHECK(has_line(text, "# TYPE test_open gauge"));
  CHECK(has_line(text, "test_open{where=\"x\"} 2.5"));
  CHECK(has_line(text, "test_open{where=\"y\"} 0"));
  g.set(s2, y, 7);
  g.set(s2, y, 4);
  CHECK(has_line(r->render_prometheus(), "test_open{where=\"y\"} 4"));
}

TEST_CASE("metrics: histogram buckets are cumulative, with le bounds inclusive") {
  auto r = std::make_shared<MetricsRegistry>();
  Histogram h = r->histogram({"test_latency_seconds", "Latency.", {"route"}}, {0.5, 1, 2});
  MetricsShard& s1 = r->add_shard();
  MetricsShard& s2 = r->add_shard();
  const MetricSeries api = h.series({"api"});
  h.observe(s1, api, 0.25);
  h.observe(s1, api, 0.5);  // on the bound: counted in le="0.5"
  h.observe(s2, api, 1.5);
  h.observe(s2, api, 30);   // past every bound: +Inf only
  h.observe(s2, api, std::numeric_limits<double>::quiet_NaN());  // ignored
  const std::string text = r->render_prometheus();
  CAPTURE(text);
  CHECK(has_line(text, "# TYPE test_latency_seconds histogram"));
  CHECK(has_line(text, "test_latency_seconds_bucket{route=\"api\",le=\"0.5\"} 2"));
  CHECK(has_line(text, "test_latency_seconds_bucket{route=\"api\",le=\"1\"} 2"));
  CHECK(has_line(text, "test_latency_seconds_bucket{route=\"api\",le=\"2\"} 3"));
  CHECK(has_line(text, "test_latency_seconds_bucket{route=\"api\",le=\"+Inf\"} 4"));
  CHECK(has_line(text, "test_latency_seconds_sum{route=\"api\"} 32.25"));
  CHECK(has_line(text, "test_latency_seconds_count{route=\"api\"} 4"));
}

TEST_CASE("metrics: an unlabelled histogram, and labelled series left out while still zero") {
  auto r = std::make_shared<MetricsRegistry>();
  [[maybe_unused]] Histogram plain = r->histogram({"test_plain_seconds", "Plain.", {}}, {1});
  Counter labelled = r->counter({"test_labelled_total", "Labelled.", {"k"}});
  [[maybe_unused]] Counter unlabelled = r->counter({"test_unlabelled_total", "Unlabelled.", {}});
  labelled.series({"never"});
  const std::string text = r->render_prometheus();
  CAPTURE(text);
  CHECK(has_line(text, "test_plain_seconds_bucket{le=\"1\"} 0"));
  CHECK(has_line(text, "test_plain_seconds_bucket{le=\"+Inf\"} 0"));
  CHECK(has_line(text, "test_plain_seconds_sum 0"));
  CHECK(has_line(text, "test_plain_seconds_count 0"));
  CHECK(has_line(text, "test_unlabelled_total 0"));
  CHECK(has_line(text, "# TYPE test_labelled_total counter"));
  CHECK(text.find("never") == std::string::npos);
}

TEST_CASE("metrics: label values and help text are escaped") {
  auto r = std::make_shared<MetricsRegistry>();
  Counter c = r->counter({"test_escaped_total", "Help with \\ and\nnewline \"quotes\".", {"v"}});
  MetricsShard& s = r->add_shard();
  c.inc(s, {"a\"b\\c\nd"});
  c.inc(s, {"caf\xC3\xA9 \xFF\xC3"});  // valid UTF-8 kept, invalid bytes replaced
  const std::string text = r->render_prometheus();
  CAPTURE(text);
  CHECK(has_line(text, "# HELP test_escaped_total Help with \\\\ and\\nnewline \"quotes\"."));
  CHECK(has_line(text, "test_escaped_total{v=\"a\\\"b\\\\c\\nd\"} 1"));
  CHECK(has_line(text, "test_escaped_total{v=\"caf\xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD\"} 1"));

  std::string out;
  detail::append_sample_value(out, std::numeric_limits<double>::infinity());
  out += ' ';
  detail::append_sample_value(out, 0.1);
  out += ' ';
  detail::append_sample_value(out, std::uint64_t{18446744073709551615ull});
  CHECK(out == "+Inf 0.1 18446744073709551615");
}

TEST_CASE("metrics: past max_series, new label values are counted in the overflow series") {
  auto r = std::make_shared<MetricsRegistry>();
  Counter c = r->counter({"test_capped_total", "Capped.", {"user", "kind"}, 2});
  MetricsShard& s = r->add_shard();
  c.inc(s, {"alice", "x"});
  c.inc(s, {"bob", "x"});
  c.inc(s, {"carol", "x"});
  c.inc(s, {"dave", "y"}, 5);
  c.inc(s, c.series({"eve", "z"}));  // resolved under the lock: the same cap
  c.inc(s, {"alice", "x"});
  const std::string text = r->render_prometheus();
  CAPTURE(text);
  CHECK(has_line(text, "test_capped_total{user=\"alice\",kind=\"x\"} 2"));
  CHECK(has_line(text, "test_capped_total{user=\"bob\",kind=\"x\"} 1"));
  CHECK(has_line(text, "test_capped_total{user=\"_overflow\",kind=\"_overflow\"} 7"));
  CHECK(text.find("carol") == std::string::npos);
}

TEST_CASE("metrics: declarations are checked; the same declaration twice is the same family") {
  auto r = std::make_shared<MetricsRegistry>();
  Counter a = r->counter({"test_same_total", "Same.", {"x"}});
  Counter b = r->counter({"test_same_total", "Same, declared again.", {"x"}});
  MetricsShard& s = r->add_shard();
  a.inc(s, {"1"});
  b.inc(s, {"1"});
  CHECK(has_line(r->render_prometheus(), "test_same_total{x=\"1\"} 2"));
  CHECK_THROWS_AS(r->gauge({"test_same_total", "Other type.", {"x"}}), std::invalid_argument);
  CHECK_THROWS_AS(r->counter({"test_same_total", "Other labels.", {"y"}}), std::invalid_argument);
  CHECK_THROWS_AS(r->counter({"1bad", "Bad name.", {}}), std::invalid_argument);
  CHECK_THROWS_AS(r->counter({"test_bad_label_total", "Bad label.", {"__reserved"}}), std::invalid_argument);
  CHECK_THROWS_AS(r->counter({"test_bad_label_total", "Bad label.", {"a-b"}}), std::invalid_argument);
  CHECK_THROWS_AS(r->counter({"test_twice_total", "Label twice.", {"a", "a"}}), std::invalid_argument);
  CHECK_THROWS_AS(r->histogram({"test_le_seconds", "le label.", {"le"}}), std::invalid_argument);
  CHECK_THROWS_AS(r->histogram({"test_order_seconds", "Buckets.", {}}, {1, 0.5}), std::invalid_argument);
  CHECK_THROWS_AS(a.series({"1", "2"}), std::invalid_argument);
  CHECK_THROWS_AS(a.inc(s, std::initializer_list<std::string_view>{}), std::invalid_argument);
}

TEST_CASE("metrics: a shard of another registry, and a detached handle, change nothing") {
  auto r1 = std::make_shared<MetricsRegistry>();
  auto r2 = std::make_shared<MetricsRegistry>();
  Counter c = r1->counter({"test_mine_total", "Mine.", {}});
  MetricsShard& other = r2->add_shard();
  c.inc(other, c.series());
  Counter detached;
  detached.inc(other, MetricSeries{});
  CHECK_FALSE(static_cast<bool>(detached));
  CHECK(has_line(r1->render_prometheus(), "test_mine_total 0"));
}

TEST_CASE("metrics: callback metrics are computed at scrape time and removed with their handle") {
  auto r = std::make_shared<MetricsRegistry>();
  int calls = 0;
  MetricCallbackHandle h1 = r->gauge_callback({"test_pool_idle", "Idle.", {"upstream"}}, [&calls] {
    ++calls;
    return std::vector<MetricSample>{{{"a"}, 2}, {{"b"}, 1}, {{"wrong", "arity"}, 9}};
  });
  MetricCallbackHandle h2 = r->gauge_callback({"test_pool_idle", "Idle.", {"upstream"}},
                                              [] { return std::vector<MetricSample>{{{"a"}, 3}}; });
  MetricCallbackHandle h3 = r->counter_callback({"test_dropped_total", "Dropped.", {}},
                                                [] { return std::vector<MetricSample>{{{}, 42}}; });
  std::string text = r->render_prometheus();
  CAPTURE(text);
  CHECK(calls == 1);
  CHECK(has_line(text, "# TYPE test_pool_idle gauge"));
  CHECK(has_line(text, "test_pool_idle{upstream=\"a\"} 5"));  // summed over the callbacks
  CHECK(has_line(text, "test_pool_idle{upstream=\"b\"} 1"));
  CHECK(text.find("wrong") == std::string::npos);
  CHECK(has_line(text, "# TYPE test_dropped_total counter"));
  CHECK(has_line(text, "test_dropped_total 42"));
  h1.reset();
  h2 = MetricCallbackHandle();
  text = r->render_prometheus();
  CHECK(calls == 1);
  CHECK(text.find("test_pool_idle") == std::string::npos);
  CHECK(text.find("test_dropped_total 42") != std::string::npos);
  MetricCallbackHandle throwing = r->gauge_callback({"test_throws", "Throws.", {}}, []() -> std::vector<MetricSample> {
    throw std::runtime_error("no");
  });
  CHECK(r->render_prometheus().find("# TYPE test_throws gauge") != std::string::npos);
}

TEST_CASE("metrics: the gateway's families and label classes") {
  CHECK(detail::method_class_name(detail::method_class("GET")) == "GET");
  CHECK(detail::method_class_name(detail::method_class("OPTIONS")) == "OPTIONS");
  CHECK(detail::method_class_name(detail::method_class("PROPFIND")) == "other");
  CHECK(detail::method_class_name(detail::method_class("get")) == "other");
  CHECK(detail::status_class_name(detail::status_class(101)) == "1xx");
  CHECK(detail::status_class_name(detail::status_class(204)) == "2xx");
  CHECK(detail::status_class_name(detail::status_class(404)) == "4xx");
  CHECK(detail::status_class_name(detail::status_class(599)) == "5xx");
  CHECK(detail::auth_result_label({}) == "success");
  CHECK(detail::auth_result_label(auth::make_error_code(auth::TokenError::expired)) == "expired");
  CHECK(detail::auth_result_label(std::make_error_code(std::errc::io_error)) == "other");

  auto r = std::make_shared<MetricsRegistry>();
  detail::GatewayMetrics gm(r);
  detail::WorkerMetrics wm{gm, r->add_shard()};
  Exchange ex("POST", "/x");
  ex.response().set_status(201u);
  wm.exchange_done(ex, &gm.route("orders"), ex.response().status());
  wm.exchange_done(ex, nullptr, ex.response().status());
  const std::string text = r->render_prometheus();
  CAPTURE(text);
  CHECK(has_line(text, "gatehouse_requests_total{route=\"orders\",method_class=\"POST\",status_class=\"2xx\"} 1"));
  CHECK(has_line(text, "gatehouse_requests_total{route=\"_none\",method_class=\"POST\",status_class=\"2xx\"} 1"));
  CHECK(has_line(text, "gatehouse_request_duration_seconds_count{route=\"orders\"} 1"));
  CHECK(text.find("# TYPE gatehouse_upstream_pool_idle_connections gauge") != std::string::npos);
}
