// Options of the "access_log" built-in middleware (see loader.cpp for the conventions: strict keys,
// errors at the JSON pointer of the offending key). docs/config.md has the same text.
//
//   {path: file to append to, "-" for standard output ("-"), queue_capacity: 1..16777216 (16384)}

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "gatehouse/middleware/access_log.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

std::shared_ptr<const Middleware> make_access_log(const json& options, const std::string& path, const ConfigContext&) {
  Object o(options, path, {"path", "queue_capacity"});
  AccessLogOptions opts;
  if (const json* p = o.find("path")) {
    const std::string& file = as_string(*p, o.at("path"));
    if (file.empty() || file.find('\0') != std::string::npos) {
      throw ConfigError(o.at("path"), "expected a file name or \"-\" for standard output, got " + quote(file));
    }
    opts.path = file;
  }
  // Bounded so that a typo cannot make the log queue eat all memory.
  opts.queue_capacity = static_cast<std::size_t>(
      o.integer("queue_capacity", 1, 16'777'216, static_cast<std::int64_t>(opts.queue_capacity)));
  try {
    return std::make_shared<const AccessLog>(std::move(opts));
  } catch (const std::exception& e) {
    throw ConfigError(o.at("path"), std::string("cannot open the access log: ") + e.what());
  }
}

}  // namespace gatehouse::detail
