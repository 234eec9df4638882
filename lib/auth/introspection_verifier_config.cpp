// The "introspection" verifier type of the top-level "verifiers" section (RFC 7662):
//
//   {"type": "introspection", one of endpoint (URL) | issuer (OpenID discovery),
//    client_id, one of client_secret | client_secret_env (name of an environment variable),
//    ca_file, allow_plain_http: false, timeout_ms: 3000, audiences: [], issuers: [],
//    leeway_s: 0..3600 (30), max_token_bytes: 16..65536 (4096), max_pending: 1..100000 (256),
//    cache: {enabled: true, max_entries: 1..10000000 (10000), max_active_s: 1..86400 (300),
//            inactive_s: 0..3600 (10)}}

#include <cstdlib>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "gatehouse/auth/introspection_verifier.hpp"
#include "gatehouse/config.hpp"

namespace gatehouse::detail {

using namespace config_json;

std::shared_ptr<const auth::TokenVerifier> make_introspection_verifier(const nlohmann::json& options,
                                                                       const std::string& path) {
  Object o(options, path,
           {"type", "endpoint", "issuer", "client_id", "client_secret", "client_secret_env", "ca_file",
            "allow_plain_http", "timeout_ms", "audiences", "issuers", "leeway_s", "max_token_bytes", "max_pending",
            "cache"});
  auth::IntrospectionVerifierOptions v;
  v.allow_plain_http = o.boolean("allow_plain_http", false);
  const std::string which = o.one_of({"endpoint", "issuer"});
  const std::string& url = as_string(*o.find(which), o.at(which));
  const std::string scheme = to_lower_ascii(url.substr(0, url.find("://")));
  if (scheme != "https" && !(v.allow_plain_http && scheme == "http")) {
    throw ConfigError(o.at(which), "expected an https:// URL, got " + quote(url));
  }
  (which == "endpoint" ? v.endpoint : v.issuer) = url;
  if (const json* id = o.find("client_id")) v.client_id = name_string(*id, o.at("client_id"), "client id");
  if (o.find("client_secret") || o.find("client_secret_env")) {
    const std::string s = o.one_of({"client_secret", "client_secret_env"});
    if (s == "client_secret") {
      v.client_secret = name_string(*o.find(s), o.at(s), "client secret");
    } else {
      const std::string var = name_string(*o.find(s), o.at(s), "environment variable name");
      const char* value = std::getenv(var.c_str());
      if (!value || !*value) throw ConfigError(o.at(s), "the environment variable " + quote(var) + " is not set");
      v.client_secret = value;
    }
    if (v.client_id.empty()) throw ConfigError(o.at("client_id"), "a client secret needs a client_id");
  }
  if (const json* ca = o.find("ca_file")) v.tls.ca_file = readable_file(*ca, o.at("ca_file"));
  v.timeout = o.duration("timeout_ms", v.timeout);
  auto strings = [&o](const char* key) {
    std::vector<std::string> out;
    if (const json* a = o.find(key)) {
      std::size_t i = 0;
      for (const json& item : as_array(*a, o.at(key))) out.push_back(name_string(item, child(o.at(key), i++), "value"));
    }
    return out;
  };
  v.audiences = strings("audiences");
  v.issuers = strings("issuers");
  v.leeway = std::chrono::seconds(o.integer("leeway_s", 0, 3600, v.leeway.count()));
  v.max_token_bytes = static_cast<std::size_t>(
      o.integer("max_token_bytes", 16, 65'536, static_cast<std::int64_t>(v.max_token_bytes)));
  v.max_pending = static_cast<std::size_t>(o.integer("max_pending", 1, 100'000, static_cast<std::int64_t>(v.max_pending)));
  if (const json* c = o.find("cache")) {
    Object co(*c, o.at("cache"), {"enabled", "max_entries", "max_active_s", "inactive_s"});
    v.cache.enabled = co.boolean("enabled", v.cache.enabled);
    v.cache.max_entries = static_cast<std::size_t>(
        co.integer("max_entries", 1, 10'000'000, static_cast<std::int64_t>(v.cache.max_entries)));
    v.cache.max_active = std::chrono::seconds(co.integer("max_active_s", 1, 86'400, v.cache.max_active.count()));
    v.cache.inactive = std::chrono::seconds(co.integer("inactive_s", 0, 3600, v.cache.inactive.count()));
  }
  try {
    return std::make_shared<const auth::IntrospectionVerifier>(std::move(v));
  } catch (const std::invalid_argument& e) {
    throw ConfigError(o.at(which), e.what());
  }
}

}  // namespace gatehouse::detail
