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
//     trace_context  optional object, as the top-level one (trace_context.cpp); keys it leaves
//                    out come from the top level

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <asio/ip/address.hpp>
#include <nlohmann/json.hpp>

#include "config/sections.hpp"
#include "tls/tls_context.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

namespace {
constexpr std::int64_t kMaxConnections = 100'000'000;  // far above what a process can hold open
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

std::vector<ListenerOptions> parse_listeners(const Object& top, const TraceContextOptions& trace_context) {
  const std::string lp = top.at("listeners");
  const json& arr = as_array(top.require("listeners", "at least one listener is needed"), lp);
  if (arr.empty()) throw ConfigError(lp, "at least one listener is needed");
  std::vector<ListenerOptions> out;
  std::vector<std::pair<asio::ip::address, std::string>> bound;  // for duplicate detection
  std::size_t i = 0;
  for (const json& l : arr) {
    Object o(l, child(lp, i++), {"name", "address", "port", "backlog", "tls", "trace_context", "max_connections",
                           "max_connections_per_client"});
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
