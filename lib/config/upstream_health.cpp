// An upstream's health keys (part of the "upstreams" section, see upstreams.cpp):
//
//   health_check        optional object (its presence enables active checks):
//     type               "http" (default) or "tcp"
//     path               "/" ; host: "" (the endpoint as configured) — http only
//     expected_statuses  array of statuses (200) or ranges ("200-399"); default ["200-399"]
//     interval_ms (5000), timeout_ms (2000), jitter_percent 0..50 (10)
//     healthy_threshold (2), unhealthy_threshold (3): 1..100
//   outlier_detection   optional object (its presence enables passive ejection):
//     consecutive_5xx (5), consecutive_gateway_failures (5): 0..1000, 0 disables that count
//     base_ejection_time_ms (30000), max_ejection_time_ms (300000), max_ejection_percent 0..100 (10)
//   panic_threshold_percent  0..100, default 50
//   slow_start_ms            >= 0, default 0 (no ramp)
#include <charconv>
#include <string>

#include <nlohmann/json.hpp>

#include "config/sections.hpp"
#include "gatehouse/upstream_health.hpp"
#include "util/text.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

namespace {

std::pair<unsigned, unsigned> status_range(const json& j, const std::string& path) {
  if (j.is_number_integer()) {
    const auto s = static_cast<unsigned>(as_integer(j, path, 100, 599));
    return {s, s};
  }
  const std::string& text = as_string(j, path);
  unsigned lo = 0, hi = 0;
  const auto dash = text.find('-');
  auto number = [](std::string_view t, unsigned& out) {
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
    return !t.empty() && ec == std::errc{} && end == t.data() + t.size();
  };
  if (dash == std::string::npos || !number(std::string_view(text).substr(0, dash), lo) ||
      !number(std::string_view(text).substr(dash + 1), hi) || lo < 100 || hi > 599 || lo > hi)
    throw ConfigError(path, "expected a status (200) or a range of statuses (\"200-399\") within 100..599, got " + quote(text));
  return {lo, hi};
}

HealthCheckOptions parse_health_check(const json& j, const std::string& path) {
  Object o(j, path,
           {"type", "path", "host", "expected_statuses", "interval_ms", "timeout_ms", "jitter_percent",
            "healthy_threshold", "unhealthy_threshold"});
  HealthCheckOptions h;
  const std::string type = o.string("type", "http");
  if (type != "http" && type != "tcp") throw ConfigError(o.at("type"), "expected \"http\" or \"tcp\", got " + quote(type));
  h.kind = type == "http" ? HealthCheckOptions::Kind::http : HealthCheckOptions::Kind::tcp;
  if (h.kind == HealthCheckOptions::Kind::tcp) {
    for (const char* k : {"path", "host", "expected_statuses"})
      if (o.has(k)) throw ConfigError(o.at(k), quote(k) + " applies to \"http\" checks only");
  }
  h.path = o.string("path", h.path);
  if (h.path.empty() || h.path.front() != '/' || !is_field_value(h.path) || h.path.find_first_of(" \t") != std::string::npos)
    throw ConfigError(o.at("path"), "expected a path starting with \"/\", without spaces or control characters");
  h.host = o.string("host", "");
  if (!h.host.empty() && !is_field_value(h.host)) throw ConfigError(o.at("host"), "must not contain control characters");
  if (const json* s = o.find("expected_statuses")) {
    const std::string sp = o.at("expected_statuses");
    const json& list = as_array(*s, sp);
    if (list.empty()) throw ConfigError(sp, "at least one status is needed");
    h.expected_statuses.clear();
    std::size_t i = 0;
    for (const json& e : list) h.expected_statuses.push_back(status_range(e, child(sp, i++)));
  }
  h.interval = o.duration("interval_ms", h.interval);
  h.timeout = o.duration("timeout_ms", h.timeout);
  h.jitter = static_cast<double>(o.integer("jitter_percent", 0, 50, 10)) / 100.0;
  h.healthy_threshold = static_cast<unsigned>(o.integer("healthy_threshold", 1, 100, h.healthy_threshold));
  h.unhealthy_threshold = static_cast<unsigned>(o.integer("unhealthy_threshold", 1, 100, h.unhealthy_threshold));
  return h;
}

OutlierDetectionOptions parse_outlier_detection(const json& j, const std::string& path) {
  Object o(j, path,
           {"consecutive_5xx", "consecutive_gateway_failures", "base_ejection_time_ms", "max_ejection_time_ms",
            "max_ejection_percent"});
  OutlierDetectionOptions d;
  d.consecutive_5xx = static_cast<unsigned>(o.integer("consecutive_5xx", 0, 1000, d.consecutive_5xx));
  d.consecutive_gateway_failures =
      static_cast<unsigned>(o.integer("consecutive_gateway_failures", 0, 1000, d.consecutive_gateway_failures));
  d.base_ejection_time = o.duration("base_ejection_time_ms", d.base_ejection_time);
  d.max_ejection_time = o.duration("max_ejection_time_ms", std::max(d.max_ejection_time, d.base_ejection_time));
  if (d.max_ejection_time < d.base_ejection_time)
    throw ConfigError(o.at("max_ejection_time_ms"), "must be at least base_ejection_time_ms");
  d.max_ejection_percent = static_cast<unsigned>(o.integer("max_ejection_percent", 0, 100, d.max_ejection_percent));
  return d;
}

}  // namespace

UpstreamHealthOptions parse_upstream_health(const Object& upstream) {
  UpstreamHealthOptions h;
  if (const json* j = upstream.find("health_check")) h.active = parse_health_check(*j, upstream.at("health_check"));
  if (const json* j = upstream.find("outlier_detection"))
    h.outlier_detection = parse_outlier_detection(*j, upstream.at("outlier_detection"));
  h.panic_threshold_percent =
      static_cast<unsigned>(upstream.integer("panic_threshold_percent", 0, 100, h.panic_threshold_percent));
  h.slow_start = std::chrono::milliseconds(upstream.integer("slow_start_ms", 0, duration_max, 0));
  return h;
}

}  // namespace gatehouse::detail
