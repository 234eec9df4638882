// The "trace_context" object, at the top level (every listener's default) and in a listener (its
// own; keys it leaves out come from the top level). See docs/config.md:
//
//   trace_context  optional object:
//     enabled          boolean, default true
//     continue_from    "all" | "trusted" | "never", default "trusted"
//     trusted_sources  array of CIDR blocks, default [] (= trusted_proxies)
//     sample_new       boolean, default true: the sampled flag of traces the gateway starts

#include <nlohmann/json.hpp>

#include "config/sections.hpp"
#include "net/cidr.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

std::vector<std::string> cidr_list(const json& j, const std::string& path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  for (const json& block : as_array(j, path)) {
    const std::string p = child(path, i++);
    const std::string& s = as_string(block, p);
    if (!Cidr::parse(s)) {
      throw ConfigError(p, "invalid CIDR block " + quote(s) +
                               ": expected an IPv4 or IPv6 address with an optional /prefix, as in \"10.0.0.0/8\"");
    }
    out.push_back(s);
  }
  return out;
}

TraceContextOptions parse_trace_context(const json& j, const std::string& path, const TraceContextOptions& defaults) {
  const Object o(j, path, {"enabled", "continue_from", "trusted_sources", "sample_new"});
  TraceContextOptions t = defaults;
  t.enabled = o.boolean("enabled", t.enabled);
  if (const json* c = o.find("continue_from")) {
    const std::string& s = as_string(*c, o.at("continue_from"));
    if (s == "all") t.continue_from = TraceContinue::all;
    else if (s == "trusted") t.continue_from = TraceContinue::trusted;
    else if (s == "never") t.continue_from = TraceContinue::never;
    else throw ConfigError(o.at("continue_from"), "expected \"all\", \"trusted\" or \"never\", got " + quote(s));
  }
  if (const json* ts = o.find("trusted_sources")) t.trusted_sources = cidr_list(*ts, o.at("trusted_sources"));
  t.sample_new = o.boolean("sample_new", t.sample_new);
  return t;
}

}  // namespace gatehouse::detail
