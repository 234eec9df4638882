// Options of the "response_hardening" built-in middleware. docs/config.md has the same text.
//
//   {strict_transport_security, content_type_options, frame_options, referrer_policy: string
//    ("" turns one off), headers: {name: value}, override_upstream: false,
//    remove: [name] (replaces the default list), replace_upstream_5xx: false}

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "gatehouse/middleware/response_hardening.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

std::shared_ptr<const Middleware> make_response_hardening(const json& options, const std::string& path,
                                                          const ConfigContext&) {
  Object o(options, path,
           {"strict_transport_security", "content_type_options", "frame_options", "referrer_policy", "headers",
            "override_upstream", "remove", "replace_upstream_5xx"});
  ResponseHardeningOptions opts;
  auto value = [&](const std::string& key, std::string& into) {
    if (const json* v = o.find(key)) {
      into = as_string(*v, o.at(key));
      if (!is_header_value(into)) throw ConfigError(o.at(key), "a header value cannot hold CR, LF or NUL");
    }
  };
  value("strict_transport_security", opts.strict_transport_security);
  value("content_type_options", opts.content_type_options);
  value("frame_options", opts.frame_options);
  value("referrer_policy", opts.referrer_policy);
  if (const json* h = o.find("headers")) opts.extra = header_map(*h, o.at("headers"));
  opts.override_upstream = o.boolean("override_upstream", false);
  if (const json* r = o.find("remove")) {
    const std::string rp = o.at("remove");
    opts.remove.clear();
    std::size_t i = 0;
    for (const json& name : as_array(*r, rp)) opts.remove.push_back(header_name(name, child(rp, i++)));
  }
  opts.replace_upstream_5xx = o.boolean("replace_upstream_5xx", false);
  try {
    return std::make_shared<const ResponseHardening>(std::move(opts));
  } catch (const std::invalid_argument& e) {
    throw ConfigError(path, e.what());
  }
}

}  // namespace gatehouse::detail
