// Options of the "client_identity_headers" built-in middleware. docs/config.md has the same text.
//
//   {spiffe_id: "x-client-spiffe-id", subject: "", sans: ""}: header names, "" for none.

#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "gatehouse/middleware/client_identity_headers.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

std::shared_ptr<const Middleware> make_client_identity_headers(const json& options, const std::string& path,
                                                               const ConfigContext&) {
  Object o(options, path, {"spiffe_id", "subject", "sans"});
  ClientIdentityHeadersOptions opts;
  auto name = [&](const std::string& key, std::string& into) {
    if (const json* v = o.find(key)) {
      const std::string& s = as_string(*v, o.at(key));
      into = s.empty() ? std::string() : header_name(*v, o.at(key));
    }
  };
  name("spiffe_id", opts.spiffe_id);
  name("subject", opts.subject);
  name("sans", opts.sans);
  try {
    return std::make_shared<const ClientIdentityHeaders>(std::move(opts));
  } catch (const std::invalid_argument& e) {
    throw ConfigError(path, e.what());
  }
}

}  // namespace gatehouse::detail
