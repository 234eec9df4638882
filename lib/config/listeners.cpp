// The "listeners" section (see loader.cpp for the whole format):
//
//   listeners  required, non-empty array of:
//     name      optional, non-empty, unique: what a route's "listeners" refers to
//     address   IP address string, default "127.0.0.1"
//     port      required, integer 0..65535 (0 picks a free port)
//     backlog   integer 1..65535, default 1024
//     max_connections             integer 0..100000000, default 0 (no limit): open at once, all
//                                 workers together; more are closed right after accept
//     max_connections_per_client  integer 0..100000000, default 0 (no limit): open at once from
//                                 one client address (the TCP peer)
//     tls       optional object:
//       certificates          required, non-empty array of {"cert": file, "key": file}
//       handshake_timeout_ms  duration, default 10000
//       client_ca             file; when set, client certificates are required (mTLS)
//     path_policy  optional object (gatehouse/path_policy.hpp, docs/threat_protection.md):
//       merge_slashes   boolean, default true
//       encoded_slash   "reject" (default) | "keep_encoded" | "as_slash"       (%2F)
//       backslash       "reject" (default) | "keep_encoded" | "as_slash"       ('\' and %5C)
//       encoded_nul     "reject" (default) | "keep_encoded"                    (%00)
//       crls                  array of PEM CRL files (mTLS only): revoked client certificates
//       crl_check_chain       bool, default false: check intermediates too
//       max_chain_depth       integer 0..100: most intermediate CAs in a client's chain
//     ip_filter  optional object, as the "ip_filter" middleware's options without "address"
//     trace_context  optional object, as the top-level one (trace_context.cpp); keys it leaves
//                    out come from the top level

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <asio/ip/address.hpp>
#include <nlohmann/json.hpp>

#include "config/builtins.hpp"
#include "config/sections.hpp"
#include "tls/tls_context.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

namespace {
constexpr std::int64_t kMaxConnections = 100'000'000;  // far above what a process can hold open
}

ServerTls parse_server_tls(const json& j, const std::string& path) {
  Object o(j, path, {"certificates", "handshake_timeout_ms", "client_ca", "crls", "crl_check_chain", "max_chain_depth"});
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
  for (const char* key : {"crls", "crl_check_chain", "max_chain_depth"}) {
    if (o.has(key) && tls.client_ca_file.empty())
      throw ConfigError(o.at(key), std::string(key) + " applies to client certificates: set \"client_ca\" too");
  }
  if (const json* crls = o.find("crls")) {
    const std::string rp = o.at("crls");
    std::size_t k = 0;
    for (const json& f : as_array(*crls, rp)) tls.crl_files.push_back(readable_file(f, child(rp, k++)));
    if (tls.crl_files.empty()) throw ConfigError(rp, "at least one CRL file is needed (or leave \"crls\" out)");
  }
  tls.crl_check_chain = o.boolean("crl_check_chain", false);
  tls.max_chain_depth = static_cast<int>(o.integer("max_chain_depth", 0, 100, -1));

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
      std::vector<std::pair<std::string, std::string>> files{{tls.client_ca_file, o.at("client_ca")}};
      for (std::size_t k = 0; k < tls.crl_files.size(); ++k) files.emplace_back(tls.crl_files[k], child(o.at("crls"), k));
      throw_at_file(e, files, o.at("client_ca"));
    }
  }
  return tls;
}

namespace {

PathEscapeAction escape_action(const Object& o, const std::string& key, bool slash_allowed) {
  const json* v = o.find(key);
  if (!v) return PathEscapeAction::reject;
  const std::string s = as_string(*v, o.at(key));
  if (s == "reject") return PathEscapeAction::reject;
  if (s == "keep_encoded") return PathEscapeAction::keep_encoded;
  if (s == "as_slash" && slash_allowed) return PathEscapeAction::as_slash;
  throw ConfigError(o.at(key), "expected " + std::string(slash_allowed ? "\"reject\", \"keep_encoded\" or \"as_slash\""
                                                                       : "\"reject\" or \"keep_encoded\"") +
                                   ", got " + quote(s));
}

PathPolicy parse_path_policy(const json& j, const std::string& path) {
  Object o(j, path, {"merge_slashes", "encoded_slash", "backslash", "encoded_nul"});
  PathPolicy p;
  p.merge_slashes = o.boolean("merge_slashes", p.merge_slashes);
  p.encoded_slash = escape_action(o, "encoded_slash", true);
  p.backslash = escape_action(o, "backslash", true);
  p.encoded_nul = escape_action(o, "encoded_nul", false);
  return p;
}

}  // namespace

std::vector<ListenerOptions> parse_listeners(const Object& top, const TraceContextOptions& trace_context) {
  const std::string lp = top.at("listeners");
  const json& arr = as_array(top.require("listeners", "at least one listener is needed"), lp);
  if (arr.empty()) throw ConfigError(lp, "at least one listener is needed");
  std::vector<ListenerOptions> out;
  std::vector<std::pair<asio::ip::address, std::string>> bound;  // for duplicate detection
  std::size_t i = 0;
  for (const json& l : arr) {
    Object o(l, child(lp, i++), {"name", "address", "port", "backlog", "tls", "path_policy", "ip_filter", "trace_context",
                               "max_connections", "max_connections_per_client"});
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
    opts.max_connections = static_cast<std::size_t>(o.integer("max_connections", 0, kMaxConnections, 0));
    opts.max_connections_per_client =
        static_cast<std::size_t>(o.integer("max_connections_per_client", 0, kMaxConnections, 0));
    if (const json* t = o.find("tls")) opts.tls = parse_server_tls(*t, o.at("tls"));
    if (const json* p = o.find("path_policy")) opts.path_policy = parse_path_policy(*p, o.at("path_policy"));
    if (const json* f = o.find("ip_filter")) opts.ip_filter = make_ip_filter_from(*f, o.at("ip_filter"), true);
    if (const json* t = o.find("trace_context"))
      opts.trace_context = parse_trace_context(*t, o.at("trace_context"), trace_context);
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

}  // namespace gatehouse::detail
