// Options of the "ip_filter" built-in middleware, and of a listener's "ip_filter" (the same keys
// but "address"). docs/config.md has the same text.
//
//   {name: "ip_filter", allow: [cidr], allow_file: file, deny: [cidr], deny_file: file,
//    file_check_interval_ms: 1000 (0: read once), address: "client" | "peer"}

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "gatehouse/middleware/ip_filter.hpp"
#include "net/cidr.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

namespace {

std::vector<std::string> cidr_list(const Object& o, const std::string& key) {
  const json* j = o.find(key);
  if (!j) return {};
  const std::string path = o.at(key);
  std::vector<std::string> blocks = string_list(*j, path, "CIDR block");
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (!Cidr::parse(blocks[i]))
      throw ConfigError(child(path, i), "invalid CIDR block " + quote(blocks[i]) +
                                            ": expected an IPv4 or IPv6 address with an optional /prefix");
  }
  return blocks;
}

}  // namespace

std::shared_ptr<const IpFilter> make_ip_filter_from(const json& options, const std::string& path, bool listener) {
  std::vector<std::string> keys{"name", "allow", "allow_file", "deny", "deny_file", "file_check_interval_ms"};
  if (!listener) keys.push_back("address");  // a listener has only the peer to look at
  Object o(options, path, keys);
  IpFilterOptions opts;
  if (const json* n = o.find("name")) opts.name = name_string(*n, o.at("name"), "filter name");
  opts.allow = cidr_list(o, "allow");
  opts.deny = cidr_list(o, "deny");
  if (const json* f = o.find("allow_file")) opts.allow_file = readable_file(*f, o.at("allow_file"));
  if (const json* f = o.find("deny_file")) opts.deny_file = readable_file(*f, o.at("deny_file"));
  if (opts.allow.empty() && opts.deny.empty() && opts.allow_file.empty() && opts.deny_file.empty())
    throw ConfigError(path, "needs at least one of \"allow\", \"allow_file\", \"deny\" and \"deny_file\"");
  opts.file_check_interval =
      std::chrono::milliseconds(o.integer("file_check_interval_ms", 0, duration_max, opts.file_check_interval.count()));
  if (const json* a = o.find("address")) {
    const std::string& which = as_string(*a, o.at("address"));
    if (which == "client") opts.address = IpFilterAddress::client;
    else if (which == "peer") opts.address = IpFilterAddress::peer;
    else throw ConfigError(o.at("address"), "expected \"client\" or \"peer\", got " + quote(which));
  }
  const std::string deny_file = opts.deny_file;
  try {
    return std::make_shared<const IpFilter>(std::move(opts));
  } catch (const std::exception& e) {
    // A bad line in a list file (or one that cannot be read): the message names the file.
    const std::string what = e.what();
    const bool deny = !deny_file.empty() && what.starts_with(deny_file + ":");
    throw ConfigError(deny ? o.at("deny_file") : (o.has("allow_file") ? o.at("allow_file") : path), what);
  }
}

std::shared_ptr<const Middleware> make_ip_filter(const json& options, const std::string& path, const ConfigContext&) {
  return make_ip_filter_from(options, path, false);
}

}  // namespace gatehouse::detail
