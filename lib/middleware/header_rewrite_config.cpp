// Options of the "header_rewrite" built-in middleware (see loader.cpp for the conventions: strict
// keys, errors at the JSON pointer of the offending key). docs/config.md has the same text.
//
//   {request: EDITS, response: EDITS} where EDITS is
//   {set: {name: value}, append: {name: value}, remove: [name]}

#include <memory>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "gatehouse/middleware/header_rewrite.hpp"

namespace gatehouse::detail {
namespace {

using nlohmann::json;
using namespace config_json;

HeaderEdits header_edits(const json& j, const std::string& path) {
  Object o(j, path, {"set", "append", "remove"});
  HeaderEdits edits;
  if (const json* v = o.find("set")) edits.set = header_map(*v, o.at("set"));
  if (const json* v = o.find("append")) edits.append = header_map(*v, o.at("append"));
  if (const json* v = o.find("remove")) {
    const std::string rp = o.at("remove");
    std::size_t i = 0;
    for (const json& name : as_array(*v, rp)) edits.remove.push_back(header_name(name, child(rp, i++)));
  }
  return edits;
}

}  // namespace

std::shared_ptr<const Middleware> make_header_rewrite(const json& options, const std::string& path,
                                                      const ConfigContext&) {
  Object o(options, path, {"request", "response"});
  HeaderRewriteOptions opts;
  if (const json* v = o.find("request")) opts.request = header_edits(*v, o.at("request"));
  if (const json* v = o.find("response")) opts.response = header_edits(*v, o.at("response"));
  return std::make_shared<const HeaderRewrite>(std::move(opts));
}

}  // namespace gatehouse::detail
