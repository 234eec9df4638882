// The JSON configuration loader (see docs/config.md for the same text with a full example).
//
// Format: one JSON object. Comments (// and /* */) are allowed; duplicate keys and unknown keys
// are errors everywhere. Numbers are strict integers (no floats, no strings); every "*_ms" key is a
// duration in milliseconds in 1..2147483647. Relative file names are relative to the working
// directory of the process; every named file must exist and be readable at load time, and TLS
// files are loaded once then, so a bad PEM or a key that does not match is reported at its key.
//
//   workers            integer 0..4096, default 0 (= hardware concurrency)
//   drain_timeout_ms   duration, default 10000
//   trusted_proxies    array of CIDR blocks ("10.0.0.0/8", "::1/128", "192.0.2.7"), default []
//   request_id_header  HTTP token, default "x-request-id"
//   limits             object, every key optional:
//     max_uri_bytes, max_header_bytes, max_header_count   integer >= 1
//     max_body_bytes                                      integer >= 0 (0: no limit)
//     header_timeout_ms, idle_timeout_ms, request_timeout_ms, send_timeout_ms   durations
//   listeners          required, non-empty array of:
//     name      optional, non-empty, unique: what a route's "listeners" refers to
//     address   IP address string, default "127.0.0.1"
//     port      required, integer 0..65535 (0 picks a free port)
//     backlog   integer 1..65535, default 1024
//     tls       optional object:
//       certificates          required, non-empty array of {"cert": file, "key": file}
//       handshake_timeout_ms  duration, default 10000
//       client_ca             file; when set, client certificates are required (mTLS)
//   upstreams          object: name (non-empty) -> object:
//     endpoints   required, non-empty array of "host:port" or "[ipv6]:port", port 1..65535
//     connect_timeout_ms (2000), try_timeout_ms (30000), total_timeout_ms (60000),
//     max_idle_time_ms (30000), max_connection_age_ms (300000), resolve_interval_ms (30000)
//     connect_retries      integer 0..100, default 1
//     max_idle_per_worker  integer >= 0, default 64
//     tls         optional object (its presence enables TLS to the upstream):
//       ca, server_name, client_cert, client_key   strings, default "" (none / system CAs /
//       endpoint host); client_cert and client_key go together
//   verifiers          object: name (non-empty) -> {"type": "jwt" | "introspection" | "api_keys",
//                      ...} (config_auth.cpp, config_introspection.cpp, config_api_keys.cpp)
//   token_minters      object: name (non-empty) -> internal identity token minter (see
//                      config_token_minters.cpp): {alg, key_file, issuer, audience, lifetime_s,
//                      copy_claims, not_before, cache}
//   middleware         array of {"name": string, "options": object (default {})}: the global chain.
//                      Built-ins: "access_log" {path: "-", queue_capacity: 16384},
//                      "header_rewrite" {request: EDITS, response: EDITS} where EDITS is
//                      {set: {name: value}, append: {name: value}, remove: [name]},
//                      "authenticate", "authorize" (config_auth.cpp), "mint_identity_token"
//                      {minter: name, header: "x-gatehouse-identity"} (config_token_minters.cpp)
//   routes             required, non-empty array of:
//     name            non-empty, unique; default "route<index>"
//     host            "" (any), "example.com" or "*.example.com"; default ""
//     path            starts with '/', default "/"
//     prefix          boolean, default true
//     methods         array of uppercase tokens, default [] (any)
//     rewrite_prefix  "" or a path starting with '/' (upstream routes only)
//     upstream        name of an upstream          } exactly one of the three
//     respond         {status: 100..599 (200),     }
//                      body: string (""), content_type: string ("text/plain"),
//                      headers: {name: value}}
//     jwks            name of a token minter: GET/HEAD answer its public JWKS
//     middleware      array as for the global chain, run after it
//     listeners       non-empty array of listener names (each must exist, no repeats): the route
//                     is served on those listeners only; absent: on every listener
//
// Errors are ConfigError(JSON pointer of the offending key, reason); a missing required key is
// reported at the pointer where it should be.

#include "gatehouse/config.hpp"

#include "config/json.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <utility>

#include <asio/ip/address.hpp>
#include <nlohmann/json.hpp>

#include "config/auth.hpp"
#include "config/token_minters.hpp"
#include "http1/token.hpp"
#include "gatehouse/middleware/access_log.hpp"
#include "gatehouse/middleware/header_rewrite.hpp"
#include "gatehouse/upstream.hpp"
#include "net/cidr.hpp"
#include "tls/tls_context.hpp"

namespace gatehouse {

using nlohmann::json;

ConfigError::ConfigError(std::string path, std::string reason)
    : std::runtime_error(path.empty() ? reason : path + ": " + reason),
      path_(std::move(path)),
      reason_(std::move(reason)) {}

namespace detail::config_json {

// ---------------------------------------------------------------------------------------------
// Text helpers

// JSON string form, escaped, so that control bytes in user input never reach a message raw.
std::string quote(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

// A short rendering of a value for "got ..." messages.
std::string describe(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// RFC 6901: '~' and '/' in a key are escaped.
std::string pointer_token(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string child(const std::string& path, std::string_view key) {
  return path + "/" + pointer_token(key);
}
std::string child(const std::string& path, std::size_t index) {
  return path + "/" + std::to_string(index);
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions, so "prefxi" is one
// edit from "prefix").
std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

// The closest candidate within 2 edits (first one on ties), if any.
std::optional<std::string> suggest(std::string_view word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_distance = 3;
  for (const auto& c : candidates) {
    if (word.size() > c.size() + 2 || c.size() > word.size() + 2) continue;  // cheap reject
    const std::size_t dist = edit_distance(word, c);
    if (dist < best_distance) {
      best_distance = dist;
      best = c;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  auto s = suggest(word, candidates);
  return s ? " (did you mean " + quote(*s) + "?)" : std::string();
}

bool is_token(std::string_view s) { return is_http_token(s); }

bool is_header_value(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// A DNS name: dot-separated labels of letters, digits and '-' (not at either end), one optional
// trailing dot.
bool is_dns_name(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  if (s.empty() || s.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = s.find('.', start);
    const std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool is_ipv4(std::string_view s) {
  asio::error_code ec;
  asio::ip::make_address_v4(std::string(s), ec);
  return !ec;
}

bool is_ipv6(std::string_view s) {
  if (s.find('%') != std::string_view::npos) return false;
  asio::error_code ec;
  asio::ip::make_address_v6(std::string(s), ec);
  return !ec;
}

// A host name or IPv4 address; all-numeric names must be valid IPv4 ("999.1.1.1" is a typo, not a
// DNS name).
bool is_host(std::string_view s) {
  const bool numeric = !s.empty() && s.find_first_not_of("0123456789.") == std::string_view::npos;
  return numeric ? is_ipv4(s) : is_dns_name(s);
}

// Why an upstream endpoint is invalid, or nullopt if it is fine.
std::optional<std::string> endpoint_problem(std::string_view ep) {
  if (ep.empty()) return "must not be empty";
  std::string_view host, port;
  if (ep.front() == '[') {
    const auto close = ep.find(']');
    if (close == std::string_view::npos) return "missing \"]\" after the IPv6 address";
    host = ep.substr(1, close - 1);
    if (close + 1 >= ep.size() || ep[close + 1] != ':') return "expected \":port\" after \"]\"";
    port = ep.substr(close + 2);
    if (!is_ipv6(host)) return "invalid IPv6 address " + quote(host);
  } else {
    const auto colon = ep.rfind(':');
    if (colon == std::string_view::npos) return "expected \"host:port\"";
    host = ep.substr(0, colon);
    port = ep.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return "an IPv6 address must be written in brackets, as in \"[::1]:80\"";
    }
    if (host.empty()) return "missing host";
    if (!is_host(host)) return "invalid host " + quote(host);
  }
  bool port_ok = !port.empty() && port.size() <= 5 &&
                 port.find_first_not_of("0123456789") == std::string_view::npos;
  if (port_ok) {
    const unsigned long value = std::stoul(std::string(port));
    port_ok = value >= 1 && value <= 65535;
  }
  if (!port_ok) return "port must be an integer in 1..65535, got " + quote(port);
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Typed access to JSON values: every accessor throws ConfigError at the value's path.

std::string range_text(std::int64_t lo, std::int64_t hi) {
  if (hi == int64_max) return ">= " + std::to_string(lo);
  return "in " + std::to_string(lo) + ".." + std::to_string(hi);
}

std::int64_t as_integer(const json& j, const std::string& path, std::int64_t lo, std::int64_t hi) {
  bool ok = false;
  std::int64_t value = 0;
  if (j.is_number_unsigned()) {
    const auto u = j.get<std::uint64_t>();
    if (u <= static_cast<std::uint64_t>(int64_max)) {
      value = static_cast<std::int64_t>(u);
      ok = true;
    }
  } else if (j.is_number_integer()) {
    value = j.get<std::int64_t>();
    ok = true;
  }
  if (!ok || value < lo || value > hi) {
    throw ConfigError(path, "expected an integer " + range_text(lo, hi) + ", got " + describe(j));
  }
  return value;
}

const std::string& as_string(const json& j, const std::string& path) {
  if (!j.is_string()) throw ConfigError(path, "expected a string, got " + describe(j));
  return j.get_ref<const std::string&>();
}

bool as_bool(const json& j, const std::string& path) {
  if (!j.is_boolean()) throw ConfigError(path, "expected a boolean, got " + describe(j));
  return j.get<bool>();
}

const json& as_array(const json& j, const std::string& path) {
  if (!j.is_array()) throw ConfigError(path, "expected an array, got " + describe(j));
  return j;
}

const json& as_object(const json& j, const std::string& path) {
  if (!j.is_object()) throw ConfigError(path, "expected an object, got " + describe(j));
  return j;
}

// A file that must exist and be readable now, so that a typo fails at load time, not at the first
// TLS handshake.
std::string readable_file(const json& j, const std::string& path) {
  const std::string& file = as_string(j, path);
  if (file.empty()) throw ConfigError(path, "expected a file name, got \"\"");
  if (file.find('\0') != std::string::npos) throw ConfigError(path, "file name contains a NUL byte");
  if (::access(file.c_str(), R_OK) != 0) {
    throw ConfigError(path, "cannot read " + quote(file) + ": " + std::generic_category().message(errno));
  }
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    throw ConfigError(path, "cannot read " + quote(file) + ": it is a directory");
  }
  return file;
}

// Which of `names` an error message is about: the one it mentions first (longer wins at the same
// spot, so "ca.pem" beats "a.pem"). Returns `fallback` if none is mentioned.
const std::string& path_mentioned(std::string_view what, const std::vector<std::pair<std::string, std::string>>& names,
                                  const std::string& fallback) {
  const std::string* path = &fallback;
  std::size_t best_pos = std::string_view::npos, best_len = 0;
  for (const auto& [name, p] : names) {
    if (name.empty()) continue;
    const std::size_t pos = what.find(name);
    if (pos == std::string_view::npos) continue;
    if (pos < best_pos || (pos == best_pos && name.size() > best_len)) {
      best_pos = pos;
      best_len = name.size();
      path = &p;
    }
  }
  return *path;
}

// A TLS setup error names the file it failed on; report it at the key that named that file.
[[noreturn]] void throw_at_file(const std::exception& e, const std::vector<std::pair<std::string, std::string>>& files,
                                const std::string& fallback_path) {
  throw ConfigError(path_mentioned(e.what(), files, fallback_path), e.what());
}

std::string name_string(const json& j, const std::string& path, std::string_view what) {
  const std::string& s = as_string(j, path);
  if (s.empty()) throw ConfigError(path, std::string(what) + " must not be empty");
  if (has_control(s)) throw ConfigError(path, std::string(what) + " must not contain control characters");
  return s;
}

// {"name": "value", ...} with header names that are tokens and values without CR, LF or NUL.
std::vector<std::pair<std::string, std::string>> header_map(const json& j, const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, value] : as_object(j, path).items()) {
    const std::string p = child(path, name);
    if (!is_token(name)) throw ConfigError(p, "invalid header name " + quote(name) + ": expected an HTTP token");
    const std::string& v = as_string(value, p);
    if (!is_header_value(v)) throw ConfigError(p, "header value must not contain CR, LF or NUL");
    out.emplace_back(name, v);
  }
  return out;
}

HeaderEdits header_edits(const json& j, const std::string& path) {
  Object o(j, path, {"set", "append", "remove"});
  HeaderEdits edits;
  if (const json* v = o.find("set")) edits.set = header_map(*v, o.at("set"));
  if (const json* v = o.find("append")) edits.append = header_map(*v, o.at("append"));
  if (const json* v = o.find("remove")) {
    const std::string rp = o.at("remove");
    std::size_t i = 0;
    for (const json& name : as_array(*v, rp)) {
      const std::string p = child(rp, i++);
      const std::string& n = as_string(name, p);
      if (!is_token(n)) throw ConfigError(p, "invalid header name " + quote(n) + ": expected an HTTP token");
      edits.remove.push_back(n);
    }
  }
  return edits;
}

}  // namespace detail::config_json

using namespace detail::config_json;

namespace {

// ---------------------------------------------------------------------------------------------
// Sections

Limits parse_limits(const json& j, const std::string& path) {
  Object o(j, path,
           {"max_uri_bytes", "max_header_bytes", "max_header_count", "max_body_bytes", "header_timeout_ms",
            "idle_timeout_ms", "request_timeout_ms", "send_timeout_ms"});
  Limits l;
  l.max_uri_bytes = static_cast<std::size_t>(o.integer("max_uri_bytes", 1, int64_max, static_cast<std::int64_t>(l.max_uri_bytes)));
  l.max_header_bytes =
      static_cast<std::size_t>(o.integer("max_header_bytes", 1, int64_max, static_cast<std::int64_t>(l.max_header_bytes)));
  l.max_header_count =
      static_cast<std::size_t>(o.integer("max_header_count", 1, int64_max, static_cast<std::int64_t>(l.max_header_count)));
  l.max_body_bytes =
      static_cast<std::uint64_t>(o.integer("max_body_bytes", 0, int64_max, static_cast<std::int64_t>(l.max_body_bytes)));
  l.header_timeout = o.duration("header_timeout_ms", l.header_timeout);
  l.idle_timeout = o.duration("idle_timeout_ms", l.idle_timeout);
  l.request_timeout = o.duration("request_timeout_ms", l.request_timeout);
  l.send_timeout = o.duration("send_timeout_ms", l.send_timeout);
  return l;
}

ServerTls parse_server_tls(const json& j, const std::string& path) {
  Object o(j, path, {"certificates", "handshake_timeout_ms", "client_ca"});
  ServerTls tls;
  const std::string cp = o.at("certificates");
  const json& certs = as_array(o.require("certificates"), cp);
  if (certs.empty()) throw ConfigError(cp, "at least one certificate is needed");
  std::size_t i = 0;
  for (const json& c : certs) {
    Object co(c, child(cp, i++), {"cert", "key"});
    CertificateFiles files;
    files.cert_file = readable_file(co.require("cert"), co.at("cert"));
    files.key_file = readable_file(co.require("key"), co.at("key"));
    tls.certificates.push_back(std::move(files));
  }
  tls.handshake_timeout = o.duration("handshake_timeout_ms", tls.handshake_timeout);
  if (const json* ca = o.find("client_ca")) tls.client_ca_file = readable_file(*ca, o.at("client_ca"));

  // Load the files once now, so that a bad PEM or a key that does not match its certificate is
  // reported with its path at load time rather than when the gateway starts.
  // Each certificate alone first: the same file may appear in several entries, and only the
  // entry's index says which pair is wrong.
  for (std::size_t k = 0; k < tls.certificates.size(); ++k) {
    try {
      ServerTls one;
      one.certificates.push_back(tls.certificates[k]);
      detail::make_server_context(one);
    } catch (const std::exception& e) {
      const std::string entry = child(cp, k);
      throw_at_file(e, {{tls.certificates[k].cert_file, child(entry, "cert")},
                        {tls.certificates[k].key_file, child(entry, "key")}}, entry);
    }
  }
  if (!tls.client_ca_file.empty()) {
    try {
      detail::make_server_context(tls);
    } catch (const std::exception& e) {
      throw ConfigError(o.at("client_ca"), e.what());
    }
  }
  return tls;
}

std::vector<ListenerOptions> parse_listeners(const Object& top) {
  const std::string lp = top.at("listeners");
  const json& arr = as_array(top.require("listeners", "at least one listener is needed"), lp);
  if (arr.empty()) throw ConfigError(lp, "at least one listener is needed");
  std::vector<ListenerOptions> out;
  std::vector<std::pair<asio::ip::address, std::string>> bound;  // for duplicate detection
  std::size_t i = 0;
  for (const json& l : arr) {
    Object o(l, child(lp, i++), {"name", "address", "port", "backlog", "tls"});
    ListenerOptions opts;
    if (const json* n = o.find("name")) {
      opts.name = name_string(*n, o.at("name"), "listener name");
      for (std::size_t k = 0; k < out.size(); ++k) {
        if (out[k].name == opts.name) {
          throw ConfigError(o.at("name"), "duplicate listener name " + quote(opts.name) + " (also " + child(lp, k) + ")");
        }
      }
    }
    opts.address = o.string("address", opts.address);
    asio::error_code ec;
    const auto addr = asio::ip::make_address(opts.address, ec);
    if (ec || opts.address.find('\0') != std::string::npos) {
      throw ConfigError(o.at("address"),
                        "expected an IP address (a listener binds an address, not a host name), got " +
                            quote(opts.address));
    }
    opts.port = static_cast<std::uint16_t>(as_integer(o.require("port"), o.at("port"), 0, 65535));
    opts.backlog = static_cast<int>(o.integer("backlog", 1, 65535, opts.backlog));
    if (const json* t = o.find("tls")) opts.tls = parse_server_tls(*t, o.at("tls"));
    if (opts.port != 0) {
      for (std::size_t k = 0; k < out.size(); ++k) {
        if (out[k].port == opts.port && bound[k].first == addr) {
          throw ConfigError(o.at("port"), "duplicate listener " + opts.address + ":" + std::to_string(opts.port) +
                                              " (also " + child(lp, k) + ")");
        }
      }
    }
    bound.emplace_back(addr, opts.address);
    out.push_back(std::move(opts));
  }
  return out;
}

UpstreamTls parse_upstream_tls(const json& j, const std::string& path) {
  Object o(j, path, {"ca", "server_name", "client_cert", "client_key"});
  UpstreamTls tls;
  if (const json* ca = o.find("ca"); ca && !as_string(*ca, o.at("ca")).empty()) {
    tls.ca_file = readable_file(*ca, o.at("ca"));
  }
  tls.server_name = o.string("server_name", "");
  if (!tls.server_name.empty() && !is_host(tls.server_name)) {
    throw ConfigError(o.at("server_name"), "expected a host name, got " + quote(tls.server_name));
  }
  // "" counts as absent, so that templates can leave the keys in place.
  const std::string cert = o.string("client_cert", "");
  const std::string key = o.string("client_key", "");
  if (cert.empty() != key.empty()) {
    const std::string missing = cert.empty() ? "client_cert" : "client_key";
    const std::string given = cert.empty() ? "client_key" : "client_cert";
    throw ConfigError(o.at(missing), "missing " + quote(missing) + ": " + quote(given) + " and " + quote(missing) +
                                         " go together");
  }
  if (!cert.empty()) {
    tls.client_certificate.cert_file = readable_file(*o.find("client_cert"), o.at("client_cert"));
    tls.client_certificate.key_file = readable_file(*o.find("client_key"), o.at("client_key"));
  }
  return tls;
}

std::shared_ptr<Upstream> parse_upstream(const std::string& name, const json& j, const std::string& path) {
  Object o(j, path,
           {"endpoints", "connect_timeout_ms", "try_timeout_ms", "total_timeout_ms", "connect_retries",
            "max_idle_per_worker", "max_idle_time_ms", "max_connection_age_ms", "resolve_interval_ms", "tls"});
  UpstreamOptions opts;
  opts.name = name;
  const std::string ep_path = o.at("endpoints");
  const json& eps = as_array(o.require("endpoints"), ep_path);
  if (eps.empty()) throw ConfigError(ep_path, "at least one endpoint is needed");
  std::size_t i = 0;
  for (const json& e : eps) {
    const std::string p = child(ep_path, i++);
    const std::string& ep = as_string(e, p);
    if (auto problem = endpoint_problem(ep)) throw ConfigError(p, "invalid endpoint " + quote(ep) + ": " + *problem);
    opts.endpoints.push_back(ep);
  }
  opts.connect_timeout = o.duration("connect_timeout_ms", opts.connect_timeout);
  opts.try_timeout = o.duration("try_timeout_ms", opts.try_timeout);
  opts.total_timeout = o.duration("total_timeout_ms", opts.total_timeout);
  opts.connect_retries = static_cast<unsigned>(o.integer("connect_retries", 0, 100, opts.connect_retries));
  opts.max_idle_per_worker = static_cast<std::size_t>(
      o.integer("max_idle_per_worker", 0, int64_max, static_cast<std::int64_t>(opts.max_idle_per_worker)));
  opts.max_idle_time = o.duration("max_idle_time_ms", opts.max_idle_time);
  opts.max_connection_age = o.duration("max_connection_age_ms", opts.max_connection_age);
  opts.resolve_interval = o.duration("resolve_interval_ms", opts.resolve_interval);
  if (const json* t = o.find("tls")) opts.tls = parse_upstream_tls(*t, o.at("tls"));

  const std::vector<std::string> endpoints = opts.endpoints;
  std::vector<std::pair<std::string, std::string>> tls_files;
  if (opts.tls) {
    const std::string tp = o.at("tls");
    if (!opts.tls->ca_file.empty()) tls_files.emplace_back(opts.tls->ca_file, child(tp, "ca"));
    if (!opts.tls->client_certificate.cert_file.empty()) {
      tls_files.emplace_back(opts.tls->client_certificate.cert_file, child(tp, "client_cert"));
      tls_files.emplace_back(opts.tls->client_certificate.key_file, child(tp, "client_key"));
    }
  }
  const std::string tls_path = opts.tls ? o.at("tls") : path;
  try {
    return Upstream::create(std::move(opts));
  } catch (const std::invalid_argument& e) {
    // Point at the endpoint the message names.
    std::vector<std::pair<std::string, std::string>> names;
    for (std::size_t k = 0; k < endpoints.size(); ++k) names.emplace_back(endpoints[k], child(ep_path, k));
    throw ConfigError(path_mentioned(e.what(), names, ep_path), e.what());
  } catch (const std::exception& e) {
    // Anything else comes from the TLS context (a bad CA bundle or client certificate).
    throw_at_file(e, tls_files, tls_path);
  }
}

std::map<std::string, std::shared_ptr<Upstream>> parse_upstreams(const Object& top) {
  std::map<std::string, std::shared_ptr<Upstream>> out;
  const json* j = top.find("upstreams");
  if (!j) return out;
  const std::string up = top.at("upstreams");
  for (const auto& [name, value] : as_object(*j, up).items()) {
    const std::string p = child(up, name);
    if (name.empty()) throw ConfigError(p, "upstream name must not be empty");
    if (has_control(name)) throw ConfigError(p, "upstream name must not contain control characters");
    out.emplace(name, parse_upstream(name, value, p));
  }
  return out;
}

std::vector<std::shared_ptr<const Middleware>> parse_chain(const json& j, const std::string& path,
                                                           const MiddlewareRegistry& registry,
                                                           const ConfigContext& context) {
  std::vector<std::shared_ptr<const Middleware>> chain;
  std::size_t i = 0;
  for (const json& entry : as_array(j, path)) {
    Object o(entry, child(path, i++), {"name", "options"});
    const std::string name = as_string(o.require("name"), o.at("name"));
    const std::string options_path = o.at("options");
    static const json empty_options = json::object();
    const json* options = o.find("options");
    if (options) {
      as_object(*options, options_path);
    } else {
      options = &empty_options;
    }
    // create() reports unknown names (with the known ones) at the path it is given.
    const std::string& at = registry.contains(name) ? options_path : o.at("name");
    try {
      chain.push_back(registry.create(name, *options, at, context));
    } catch (const ConfigError&) {
      throw;
    } catch (const std::exception& e) {
      throw ConfigError(options_path, "cannot create middleware " + quote(name) + ": " + e.what());
    }
    if (!chain.back()) throw ConfigError(options_path, "middleware factory for " + quote(name) + " returned null");
  }
  return chain;
}

bool bodyless_status(std::int64_t status) { return status < 200 || status == 204 || status == 304; }

Handler parse_respond(const json& j, const std::string& path) {
  Object o(j, path, {"status", "body", "content_type", "headers"});
  const auto status = o.integer("status", 100, 599, 200);
  const std::string body = o.string("body", "");
  if (!body.empty() && bodyless_status(status)) {
    throw ConfigError(o.at("body"), "a " + std::to_string(status) + " response cannot have a body");
  }
  const std::string content_type = o.string("content_type", "text/plain");
  if (content_type.empty() || !is_header_value(content_type)) {
    throw ConfigError(o.at("content_type"), "expected a media type without CR, LF or NUL, got " + quote(content_type));
  }
  auto response = std::make_shared<Response>();
  response->set_status(static_cast<unsigned>(status));
  if (!body.empty()) response->set_body(body, content_type);
  if (const json* h = o.find("headers")) {
    for (const auto& [name, value] : header_map(*h, o.at("headers"))) {
      const std::string p = child(o.at("headers"), name);
      if (iequals(name, "content-length") || iequals(name, "transfer-encoding")) {
        throw ConfigError(p, quote(name) + " is set by the gateway from the body");
      }
      if (iequals(name, "content-type") && o.has("content_type")) {
        throw ConfigError(p, "conflicts with \"content_type\"; give the media type once");
      }
      response->headers().set(name, value);
    }
  }
  std::shared_ptr<const Response> prototype = std::move(response);
  return [prototype](Exchange&) { return Flow::respond(Response(*prototype)); };
}

std::vector<Route> parse_routes(const Object& top, const std::vector<ListenerOptions>& listeners,
                                const std::map<std::string, std::shared_ptr<Upstream>>& upstreams,
                                const MiddlewareRegistry& registry, const ConfigContext& context) {
  const std::string rp = top.at("routes");
  const json& arr = as_array(top.require("routes", "at least one route is needed"), rp);
  if (arr.empty()) throw ConfigError(rp, "at least one route is needed");

  std::vector<std::string> upstream_names;
  for (const auto& [name, u] : upstreams) upstream_names.push_back(name);
  std::vector<std::string> listener_names;
  for (const auto& l : listeners)
    if (!l.name.empty()) listener_names.push_back(l.name);

  std::vector<Route> routes;
  std::map<std::string, std::string> names;  // name -> path of the route that has it
  std::size_t i = 0;
  for (const json& r : arr) {
    const std::string path = child(rp, i);
    Object o(r, path,
             {"name", "host", "path", "prefix", "methods", "rewrite_prefix", "upstream", "respond", "jwks",
              "middleware", "listeners"});
    Route route;

    if (const json* n = o.find("name")) {
      route.name = name_string(*n, o.at("name"), "route name");
    } else {
      route.name = "route" + std::to_string(i);
    }
    if (auto [it, inserted] = names.emplace(route.name, path); !inserted) {
      throw ConfigError(o.has("name") ? o.at("name") : path,
                        "duplicate route name " + quote(route.name) + " (also " + it->second + ")");
    }

    route.host = o.string("host", "");
    if (!route.host.empty()) {
      const std::string_view h = route.host;
      const bool ok = h.starts_with("*.") ? is_dns_name(h.substr(2))
                      : (h.front() == '[' && h.back() == ']') ? is_ipv6(h.substr(1, h.size() - 2))
                                                              : is_host(h);
      if (!ok) {
        throw ConfigError(o.at("host"), "expected \"\" (any host), a host name or \"*.domain\", got " + quote(route.host));
      }
    }

    route.path = o.string("path", "/");
    if (!route.path.starts_with('/')) throw ConfigError(o.at("path"), "must start with \"/\", got " + quote(route.path));
    if (route.path.find_first_of(std::string_view(" ?#\0", 4)) != std::string::npos || has_control(route.path)) {
      throw ConfigError(o.at("path"), "must not contain spaces, control characters, \"?\" or \"#\", got " + quote(route.path));
    }
    route.prefix = o.boolean("prefix", true);

    if (const json* m = o.find("methods")) {
      const std::string mp = o.at("methods");
      std::size_t k = 0;
      for (const json& method : as_array(*m, mp)) {
        const std::string p = child(mp, k++);
        const std::string& s = as_string(method, p);
        const bool upper = std::none_of(s.begin(), s.end(), [](char c) { return c >= 'a' && c <= 'z'; });
        if (!is_token(s) || !upper) throw ConfigError(p, "expected an uppercase method name like \"GET\", got " + quote(s));
        if (std::find(route.methods.begin(), route.methods.end(), s) != route.methods.end()) {
          throw ConfigError(p, "duplicate method " + quote(s));
        }
        route.methods.push_back(s);
      }
    }

    if (const json* ls = o.find("listeners")) {
      const std::string lp = o.at("listeners");
      if (as_array(*ls, lp).empty()) {
        throw ConfigError(lp, "at least one listener name is needed (leave \"listeners\" out to serve the route on every listener)");
      }
      std::size_t k = 0;
      for (const json& item : *ls) {
        const std::string p = child(lp, k++);
        std::string name = name_string(item, p, "listener name");
        if (std::find(listener_names.begin(), listener_names.end(), name) == listener_names.end()) {
          throw ConfigError(p, "unknown listener " + quote(name) + did_you_mean(name, listener_names) + "; named listeners: " +
                                   (listener_names.empty() ? std::string("none (give a listener a \"name\")")
                                                           : join(listener_names)));
        }
        if (std::find(route.listeners.begin(), route.listeners.end(), name) != route.listeners.end()) {
          throw ConfigError(p, "duplicate listener " + quote(name));
        }
        route.listeners.push_back(std::move(name));
      }
    }

    const json* upstream = o.find("upstream");
    const json* respond = o.find("respond");
    const json* jwks = o.find("jwks");
    const int targets = (upstream ? 1 : 0) + (respond ? 1 : 0) + (jwks ? 1 : 0);
    if (targets == 0) throw ConfigError(path, "a route needs one of \"upstream\", \"respond\" and \"jwks\"");
    if (targets > 1) {
      throw ConfigError(o.at(jwks ? "jwks" : "respond"),
                        "a route has exactly one of \"upstream\", \"respond\" and \"jwks\"");
    }
    if (jwks) {
      route.handler = detail::make_jwks_handler(*jwks, o.at("jwks"), context);
    } else if (upstream) {
      const std::string& name = as_string(*upstream, o.at("upstream"));
      auto it = upstreams.find(name);
      if (it == upstreams.end()) {
        std::string reason = "unknown upstream " + quote(name) + "; defined: " +
                             (upstream_names.empty() ? std::string("(none)") : join(upstream_names));
        reason += did_you_mean(name, upstream_names);
        throw ConfigError(o.at("upstream"), reason);
      }
      route.upstream = it->second;
    } else {
      route.handler = parse_respond(*respond, o.at("respond"));
    }

    if (const json* rw = o.find("rewrite_prefix")) {
      const std::string p = o.at("rewrite_prefix");
      if (!upstream) throw ConfigError(p, "only applies to routes with an \"upstream\"");
      const std::string& s = as_string(*rw, p);
      if (!s.empty() && !s.starts_with('/')) throw ConfigError(p, "must be \"\" or start with \"/\", got " + quote(s));
      if (s.find_first_of(std::string_view(" ?#\0", 4)) != std::string::npos || has_control(s)) {
        throw ConfigError(p, "must not contain spaces, control characters, \"?\" or \"#\", got " + quote(s));
      }
      route.rewrite_prefix = s;
    }

    if (const json* m = o.find("middleware")) route.middleware = parse_chain(*m, o.at("middleware"), registry, context);
    routes.push_back(std::move(route));
    ++i;
  }
  return routes;
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// MiddlewareRegistry

MiddlewareRegistry MiddlewareRegistry::with_builtins() {
  MiddlewareRegistry r;
  r.add("access_log", [](const json& options, const std::string& path) -> std::shared_ptr<const Middleware> {
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
  });
  r.add("header_rewrite", [](const json& options, const std::string& path) -> std::shared_ptr<const Middleware> {
    Object o(options, path, {"request", "response"});
    HeaderRewriteOptions opts;
    if (const json* v = o.find("request")) opts.request = header_edits(*v, o.at("request"));
    if (const json* v = o.find("response")) opts.response = header_edits(*v, o.at("response"));
    return std::make_shared<const HeaderRewrite>(std::move(opts));
  });
  r.add("authenticate", MiddlewareRegistry::Factory(detail::make_authenticate));
  r.add("authorize", MiddlewareRegistry::SimpleFactory(detail::make_authorize));
  r.add("mint_identity_token", MiddlewareRegistry::Factory(detail::make_mint_identity_token));
  return r;
}

void MiddlewareRegistry::add(std::string name, Factory factory) { factories_[std::move(name)] = std::move(factory); }

void MiddlewareRegistry::add(std::string name, SimpleFactory factory) {
  add(std::move(name), Factory([f = std::move(factory)](const json& options, const std::string& path,
                                                        const ConfigContext&) { return f(options, path); }));
}

bool MiddlewareRegistry::contains(const std::string& name) const { return factories_.count(name) != 0; }

std::shared_ptr<const Middleware> MiddlewareRegistry::create(const std::string& name, const json& options,
                                                             const std::string& path,
                                                             const ConfigContext& context) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    std::vector<std::string> known;
    for (const auto& [n, f] : factories_) known.push_back(n);
    throw ConfigError(path, "unknown middleware " + quote(name) + did_you_mean(name, known) + "; known: " +
                                (known.empty() ? std::string("(none)") : join(known)));
  }
  return it->second(options, path, context);
}

// -------------------------------------------------------------------------------------------------
// Loading

GatewayConfig load_config(std::string_view json_text, const MiddlewareRegistry& registry) {
  const json root = parse_json(json_text);
  if (!root.is_object()) throw ConfigError("", "expected an object at the top level, got " + describe(root));
  Object top(root, "",
             {"workers", "drain_timeout_ms", "trusted_proxies", "request_id_header", "limits", "listeners",
              "upstreams", "verifiers", "token_minters", "middleware", "routes"});

  GatewayConfig config;
  GatewayOptions& opts = config.options;
  opts.workers = static_cast<unsigned>(top.integer("workers", 0, 4096, opts.workers));
  opts.drain_timeout = top.duration("drain_timeout_ms", opts.drain_timeout);
  if (const json* tp = top.find("trusted_proxies")) {
    const std::string tpp = top.at("trusted_proxies");
    std::size_t i = 0;
    for (const json& block : as_array(*tp, tpp)) {
      const std::string p = child(tpp, i++);
      const std::string& s = as_string(block, p);
      if (!detail::Cidr::parse(s)) {
        throw ConfigError(p, "invalid CIDR block " + quote(s) +
                                 ": expected an IPv4 or IPv6 address with an optional /prefix, as in \"10.0.0.0/8\"");
      }
      opts.trusted_proxies.push_back(s);
    }
  }
  if (const json* h = top.find("request_id_header")) {
    const std::string& s = as_string(*h, top.at("request_id_header"));
    if (!is_token(s)) throw ConfigError(top.at("request_id_header"), "expected an HTTP header name, got " + quote(s));
    opts.request_id_header = s;
  }
  if (const json* l = top.find("limits")) opts.limits = parse_limits(*l, top.at("limits"));

  config.listeners = parse_listeners(top);
  config.upstreams = parse_upstreams(top);
  if (const json* v = top.find("verifiers")) config.context.verifiers = detail::make_verifiers(*v, top.at("verifiers"));
  if (const json* t = top.find("token_minters")) {
    config.context.token_minters = detail::make_token_minters(*t, top.at("token_minters"));
  }
  if (const json* m = top.find("middleware")) {
    config.middleware = parse_chain(*m, top.at("middleware"), registry, config.context);
  }
  config.routes = parse_routes(top, config.listeners, config.upstreams, registry, config.context);
  return config;
}

GatewayConfig load_config_file(const std::string& file, const MiddlewareRegistry& registry) {
  auto fail = [&file](int err) {
    return ConfigError("", "cannot read " + file + ": " + std::generic_category().message(err));
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) throw fail(errno);
  std::string text;
  char buf[16384];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) text.append(buf, n);
  // A directory opens but fails to read (EISDIR).
  if (std::ferror(f.get())) throw fail(errno);
  f.reset();
  return load_config(text, registry);
}

void apply(const GatewayConfig& config, Gateway& gateway) {
  for (const auto& l : config.listeners) gateway.listen(l);
  for (const auto& m : config.middleware) gateway.use(m);
  for (const auto& r : config.routes) gateway.route(r);
}

}  // namespace gatehouse
