// The "jwt" type of the top-level "verifiers" section, whose keys an "authenticate" entry may also
// give inline (see loader.cpp for the conventions: strict keys, errors at the JSON pointer of the
// offending key). docs/config.md has the same text with examples.
//
//   {"type": "jwt",
//    issuers: [{issuer, one of jwks_file | jwks (inline JWKS object) | pem_file | jwks_uri |
//               discovery: true, and for the last two: ca_file, allow_plain_http, fetch_timeout_ms,
//               min_refresh_s, max_refresh_s, default_refresh_s, unknown_kid_interval_s}] (required),
//    algorithms: ["RS256", ...] (required), audiences: [], leeway_s: 0..3600 (30),
//    required_claims: [], typ: string, max_token_bytes: 256..1048576 (8192),
//    cache: {enabled: true, max_entries: 1..10000000 (10000), max_age_s: 1..86400 (300)}}

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/json.hpp"
#include "gatehouse/auth/jws_algorithm.hpp"
#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/auth/key_source.hpp"
#include "gatehouse/auth/remote_key_source.hpp"

namespace gatehouse::detail {
namespace {

using nlohmann::json;
using namespace config_json;

// A URL option: absolute http(s), https unless plain http is allowed.
std::string url_option(const json& j, const std::string& path, bool allow_plain_http) {
  const std::string& s = as_string(j, path);
  const bool https = s.size() >= 8 && std::equal(s.begin(), s.begin() + 8, "https://", [](char a, char b) {
                       return std::tolower(static_cast<unsigned char>(a)) == b;
                     });
  if (!https && !allow_plain_http) throw ConfigError(path, "expected an https:// URL, got " + quote(s));
  return s;
}

std::shared_ptr<const auth::KeySource> remote_key_source(const Object& o, const std::string& which,
                                                         const std::string& issuer) {
  auth::RemoteKeySourceOptions r;
  r.allow_plain_http = o.boolean("allow_plain_http", false);
  if (which == "jwks_uri") {
    r.jwks_uri = url_option(*o.find(which), o.at(which), r.allow_plain_http);
  } else {
    if (!as_bool(*o.find(which), o.at(which))) throw ConfigError(o.at(which), "expected true (or leave it out)");
    r.issuer = url_option(json(issuer), o.at("issuer"), r.allow_plain_http);
  }
  if (const json* ca = o.find("ca_file")) r.tls.ca_file = readable_file(*ca, o.at("ca_file"));
  r.fetch_timeout = o.duration("fetch_timeout_ms", r.fetch_timeout);
  auto secs = [&o](const char* key, std::chrono::seconds def) {
    return std::chrono::seconds(o.integer(key, 1, 7 * 86'400, def.count()));
  };
  r.min_refresh = secs("min_refresh_s", r.min_refresh);
  r.max_refresh = secs("max_refresh_s", r.max_refresh);
  r.default_refresh = secs("default_refresh_s", std::clamp(r.default_refresh, r.min_refresh, r.max_refresh));
  r.unknown_kid_interval = secs("unknown_kid_interval_s", r.unknown_kid_interval);
  if (r.max_refresh < r.min_refresh) throw ConfigError(o.at("max_refresh_s"), "must be at least min_refresh_s");
  if (r.default_refresh < r.min_refresh || r.default_refresh > r.max_refresh) {
    throw ConfigError(o.at("default_refresh_s"), "must lie between min_refresh_s and max_refresh_s");
  }
  try {
    return std::make_shared<auth::RemoteKeySource>(std::move(r));
  } catch (const std::exception& e) {
    throw ConfigError(o.at(which), e.what());
  }
}

const std::vector<std::string> kRemoteKeys = {"ca_file",           "allow_plain_http", "fetch_timeout_ms",
                                              "min_refresh_s",     "max_refresh_s",    "default_refresh_s",
                                              "unknown_kid_interval_s"};

std::shared_ptr<const auth::KeySource> key_source(const Object& o, const std::vector<auth::JwsAlgorithm>& algs,
                                                  const std::string& issuer) {
  const std::string which = o.one_of({"jwks_file", "jwks", "pem_file", "jwks_uri", "discovery"});
  if (which == "jwks_uri" || which == "discovery") return remote_key_source(o, which, issuer);
  for (const auto& key : kRemoteKeys) {
    if (o.find(key)) throw ConfigError(o.at(key), "only for remote keys (\"jwks_uri\" or \"discovery\")");
  }
  const std::string p = o.at(which);
  std::shared_ptr<const auth::KeySource> keys;
  try {
    if (which == "jwks") {
      keys = auth::StaticKeySource::from_jwks(as_object(*o.find(which), p).dump());
    } else {
      keys = auth::StaticKeySource::from_file(readable_file(*o.find(which), p));
    }
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError(p, std::string("cannot load keys: ") + e.what());
  }
  // A key set that can verify none of the algorithms would refuse every token: say so now.
  const auto set = keys->current();
  const bool usable = set && std::any_of(set->keys().begin(), set->keys().end(), [&](const auth::JsonWebKey& k) {
    return std::any_of(algs.begin(), algs.end(), [&](auth::JwsAlgorithm a) { return k.can_verify(a); });
  });
  if (!usable) throw ConfigError(p, "no key can verify any of the configured \"algorithms\"");
  return keys;
}

// The JWT verifier's keys, shared by the "verifiers" section and an inline "authenticate".
const std::vector<std::string> kJwtKeys = {"issuers",  "algorithms",      "audiences", "leeway_s", "required_claims",
                                           "typ",      "max_token_bytes", "cache"};

}  // namespace

const std::vector<std::string>& jwt_verifier_keys() { return kJwtKeys; }

std::shared_ptr<const auth::TokenVerifier> make_jwt_verifier_from(const Object& o, const std::string& path) {
  auth::JwtVerifierOptions v;

  // Algorithms first: the issuers' keys are checked against them.
  const std::string ap = o.at("algorithms");
  v.algorithms = string_list(o.require("algorithms"), ap, "algorithm");
  if (v.algorithms.empty()) throw ConfigError(ap, "at least one algorithm is needed");
  std::vector<auth::JwsAlgorithm> algs;
  for (std::size_t i = 0; i < v.algorithms.size(); ++i) {
    auto a = auth::parse_jws_algorithm(v.algorithms[i]);
    if (!a) {
      throw ConfigError(child(ap, i), "unsupported algorithm " + quote(v.algorithms[i]) +
                                          "; expected one of HS256..HS512, RS256..RS512, PS256..PS512, "
                                          "ES256..ES512, EdDSA (\"none\" is never accepted)");
    }
    algs.push_back(*a);
  }

  const std::string ip = o.at("issuers");
  const json& issuers = as_array(o.require("issuers"), ip);
  if (issuers.empty()) throw ConfigError(ip, "at least one issuer is needed");
  std::set<std::string> seen;
  std::size_t i = 0;
  for (const json& entry : issuers) {
    std::vector<std::string> allowed = {"issuer", "jwks_file", "jwks", "pem_file", "jwks_uri", "discovery"};
    allowed.insert(allowed.end(), kRemoteKeys.begin(), kRemoteKeys.end());
    Object io(entry, child(ip, i++), allowed);
    auth::JwtIssuer issuer;
    issuer.issuer = name_string(io.require("issuer"), io.at("issuer"), "issuer");
    if (!seen.insert(issuer.issuer).second) throw ConfigError(io.at("issuer"), "duplicate issuer " + quote(issuer.issuer));
    issuer.keys = key_source(io, algs, issuer.issuer);
    v.issuers.push_back(std::move(issuer));
  }

  if (const json* a = o.find("audiences")) v.audiences = string_list(*a, o.at("audiences"), "audience");
  if (const json* r = o.find("required_claims")) {
    v.required_claims = string_list(*r, o.at("required_claims"), "claim name");
  }
  v.leeway = std::chrono::seconds(o.integer("leeway_s", 0, 3600, v.leeway.count()));
  if (const json* t = o.find("typ")) v.typ = name_string(*t, o.at("typ"), "typ");
  v.max_token_bytes = static_cast<std::size_t>(
      o.integer("max_token_bytes", 256, 1 << 20, static_cast<std::int64_t>(v.max_token_bytes)));
  if (const json* c = o.find("cache")) {
    Object co(*c, o.at("cache"), {"enabled", "max_entries", "max_age_s"});
    v.cache.enabled = co.boolean("enabled", v.cache.enabled);
    v.cache.max_entries = static_cast<std::size_t>(
        co.integer("max_entries", 1, 10'000'000, static_cast<std::int64_t>(v.cache.max_entries)));
    v.cache.max_age = std::chrono::seconds(co.integer("max_age_s", 1, 86'400, v.cache.max_age.count()));
  }
  try {
    return std::make_shared<const auth::JwtVerifier>(std::move(v));
  } catch (const std::invalid_argument& e) {
    throw ConfigError(path, e.what());
  }
}

std::shared_ptr<const auth::TokenVerifier> make_jwt_verifier(const json& options, const std::string& path) {
  Object o(options, path, with({"type"}, kJwtKeys));
  return make_jwt_verifier_from(o, path);
}

}  // namespace gatehouse::detail
