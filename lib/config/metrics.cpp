// The "metrics" section (see loader.cpp for the whole format; docs/observability.md, "Metrics"):
//
//   metrics    optional object:
//     enabled  boolean, default true: the gateway counts its Prometheus metrics (the admin
//              listener serves them on /metrics); false: nothing is counted

#include <nlohmann/json.hpp>

#include "config/sections.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

MetricsOptions parse_metrics(const Object& top) {
  MetricsOptions metrics;
  if (const json* m = top.find("metrics")) {
    const Object o(*m, top.at("metrics"), {"enabled"});
    metrics.enabled = o.boolean("enabled", metrics.enabled);
  }
  return metrics;
}

}  // namespace gatehouse::detail
