// Options of the "waf" built-in middleware (docs/config.md has the same text):
//
//   mode                        "block" (default) | "detect"
//   paranoia_level              1..4, default 1
//   inbound_anomaly_threshold   default 5;  outbound_anomaly_threshold  default 4
//   crs                         true (default): load the OWASP CRS
//   crs_setup                   file, default /etc/modsecurity/crs/crs-setup.conf
//   crs_rules_dir               directory, default /usr/share/modsecurity-crs/rules
//   rule_files                  [file]: your own SecRule files, after the CRS
//   rules                       SecLang text, loaded last
//   exclude_rules               [id | "lo-hi"]: rules taken out everywhere
//   routes                      {route name: {enabled, mode, exclude_rules}}
//   request_body_limit          bytes inspected, default 131072
//   oversize_body               "reject" (413, default) | "inspect_prefix"
//   inspect_response_headers    false (default)
//   threads  default 2;  queue_size  default 256;  time_limit_ms  default 1000;  fail_open  false

#include <charconv>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "gatehouse/middleware/waf.hpp"

namespace gatehouse::detail {
namespace {

using nlohmann::json;
using namespace config_json;

constexpr int kMaxRuleId = 999999999;

WafMode mode_option(const json& j, const std::string& path) {
  const std::string& s = as_string(j, path);
  if (s == "block") return WafMode::block;
  if (s == "detect") return WafMode::detect;
  throw ConfigError(path, "expected \"block\" or \"detect\", got " + quote(s));
}

int rule_id(std::string_view s, const std::string& path) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 1 || v > kMaxRuleId)
    throw ConfigError(path, "expected a rule id (1.." + std::to_string(kMaxRuleId) + "), got " + quote(s));
  return v;
}

// [942100, "920000-920999"]
WafExclusions exclusions(const json& j, const std::string& path) {
  WafExclusions ex;
  std::size_t i = 0;
  for (const json& e : as_array(j, path)) {
    const std::string at = child(path, i++);
    if (e.is_number_integer()) {
      ex.ids.push_back(static_cast<int>(as_integer(e, at, 1, kMaxRuleId)));
      continue;
    }
    if (!e.is_string()) throw ConfigError(at, "expected a rule id or a range \"lo-hi\", got " + describe(e));
    const std::string& s = e.get_ref<const std::string&>();
    const auto dash = s.find('-');
    if (dash == std::string::npos) {
      ex.ids.push_back(rule_id(s, at));
      continue;
    }
    const int lo = rule_id(std::string_view(s).substr(0, dash), at);
    const int hi = rule_id(std::string_view(s).substr(dash + 1), at);
    if (lo > hi) throw ConfigError(at, "range " + quote(s) + " ends before it starts");
    ex.ranges.emplace_back(lo, hi);
  }
  return ex;
}

WafRouteOptions route_options(const json& j, const std::string& path) {
  Object o(j, path, {"enabled", "mode", "exclude_rules"});
  WafRouteOptions r;
  r.enabled = o.boolean("enabled", true);
  if (const json* v = o.find("mode")) r.mode = mode_option(*v, o.at("mode"));
  if (const json* v = o.find("exclude_rules")) r.exclude = exclusions(*v, o.at("exclude_rules"));
  return r;
}

}  // namespace

std::shared_ptr<const Middleware> make_waf(const json& options, const std::string& path, const ConfigContext&) {
  Object o(options, path,
           {"mode", "paranoia_level", "inbound_anomaly_threshold", "outbound_anomaly_threshold", "crs", "crs_setup",
            "crs_rules_dir", "rule_files", "rules", "exclude_rules", "routes", "request_body_limit", "oversize_body",
            "inspect_response_headers", "threads", "queue_size", "time_limit_ms", "fail_open"});
  WafOptions w;
  if (const json* v = o.find("mode")) w.mode = mode_option(*v, o.at("mode"));
  w.paranoia_level = static_cast<int>(o.integer("paranoia_level", 1, 4, w.paranoia_level));
  w.inbound_anomaly_threshold =
      static_cast<int>(o.integer("inbound_anomaly_threshold", 1, 100000, w.inbound_anomaly_threshold));
  w.outbound_anomaly_threshold =
      static_cast<int>(o.integer("outbound_anomaly_threshold", 1, 100000, w.outbound_anomaly_threshold));
  w.crs = o.boolean("crs", w.crs);
  if (const json* v = o.find("crs_setup")) w.crs_setup = readable_file(*v, o.at("crs_setup"));
  if (const json* v = o.find("crs_rules_dir")) w.crs_rules_dir = as_string(*v, o.at("crs_rules_dir"));
  if (const json* v = o.find("rule_files")) {
    const std::string at = o.at("rule_files");
    std::size_t i = 0;
    for (const json& f : as_array(*v, at)) w.rule_files.push_back(readable_file(f, child(at, i++)));
  }
  w.rules = o.string("rules", "");
  if (const json* v = o.find("exclude_rules")) w.exclude = exclusions(*v, o.at("exclude_rules"));
  if (const json* v = o.find("routes")) {
    const std::string at = o.at("routes");
    for (const auto& [name, r] : as_object(*v, at).items()) w.routes[name] = route_options(r, child(at, name));
  }
  w.request_body_limit = static_cast<std::size_t>(o.integer("request_body_limit", 1, 1LL << 30, 128 * 1024));
  if (const json* v = o.find("oversize_body")) {
    const std::string& s = as_string(*v, o.at("oversize_body"));
    if (s == "reject") w.oversize_body = WafOversizeBody::reject;
    else if (s == "inspect_prefix") w.oversize_body = WafOversizeBody::inspect_prefix;
    else throw ConfigError(o.at("oversize_body"), "expected \"reject\" or \"inspect_prefix\", got " + quote(s));
  }
  w.inspect_response_headers = o.boolean("inspect_response_headers", false);
  w.threads = static_cast<unsigned>(o.integer("threads", 1, 64, w.threads));
  w.queue_size = static_cast<std::size_t>(o.integer("queue_size", 1, 1000000, static_cast<std::int64_t>(w.queue_size)));
  w.time_limit = o.duration("time_limit_ms", w.time_limit);
  w.fail_open = o.boolean("fail_open", false);
  try {
    return std::make_shared<const Waf>(std::move(w));
  } catch (const WafError& e) {
    throw ConfigError(path, e.what());
  }
}

}  // namespace gatehouse::detail
