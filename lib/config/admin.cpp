// The "admin" section (see loader.cpp for the whole format, docs/observability.md for the API):
//
//   admin  optional object; when present the admin API listens:
//     address     IP address string, default "127.0.0.1"; any other than loopback needs a token
//                 or tls.client_ca
//     port        integer 0..65535, default 9901; not a port a listener uses on that address
//     token_file  file holding the bearer token (whitespace around it ignored)  } at most one;
//     token_env   name of the environment variable holding it (set at load)   } none: no token
//     tls         as a listener's tls; client_ca makes the admin listener mTLS-only
//
// The token is 16..4096 visible ASCII characters (`openssl rand -hex 32`). It is never written in
// the file itself, and no message quotes it.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <asio/ip/address.hpp>
#include <nlohmann/json.hpp>

#include "admin/bearer_token_check.hpp"
#include "config/sections.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

namespace {

constexpr std::size_t kMaxTokenFileBytes = 8192;

std::string trimmed(std::string s) {
  const char* space = " \t\r\n";
  const auto b = s.find_first_not_of(space);
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(space) - b + 1);
}

std::string read_token_file(const json& j, const std::string& path) {
  const std::string file = readable_file(j, path);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) throw ConfigError(path, "cannot read " + quote(file));
  std::string text(kMaxTokenFileBytes + 1, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), f.get()));
  if (std::ferror(f.get())) throw ConfigError(path, "cannot read " + quote(file));
  if (text.size() > kMaxTokenFileBytes) throw ConfigError(path, quote(file) + " is too large for a token");
  const std::string token = trimmed(std::move(text));
  if (const char* problem = admin_token_problem(token)) throw ConfigError(path, quote(file) + ": " + problem);
  return token;
}

std::string read_token_env(const json& j, const std::string& path) {
  const std::string name = name_string(j, path, "environment variable name");
  const char* value = std::getenv(name.c_str());
  if (!value || !*value) throw ConfigError(path, "the environment variable " + quote(name) + " is not set");
  const std::string token = trimmed(value);
  if (const char* problem = admin_token_problem(token)) throw ConfigError(path, quote(name) + ": " + problem);
  return token;
}

}  // namespace

std::optional<AdminOptions> parse_admin(const Object& top, const std::vector<ListenerOptions>& listeners) {
  const json* section = top.find("admin");
  if (!section) return std::nullopt;
  Object o(*section, top.at("admin"), {"address", "port", "token_file", "token_env", "tls"});
  AdminOptions admin;
  admin.address = o.string("address", admin.address);
  asio::error_code ec;
  const auto address = asio::ip::make_address(admin.address, ec);
  if (ec || admin.address.find('\0') != std::string::npos)
    throw ConfigError(o.at("address"), "expected an IP address, got " + quote(admin.address));
  admin.port = static_cast<std::uint16_t>(o.integer("port", 0, 65535, admin.port));
  if (o.has("token_file") && o.has("token_env"))
    throw ConfigError(o.at("token_env"), "give only one of \"token_file\" and \"token_env\"");
  if (const json* f = o.find("token_file")) admin.token = read_token_file(*f, o.at("token_file"));
  if (const json* e = o.find("token_env")) admin.token = read_token_env(*e, o.at("token_env"));
  if (const json* t = o.find("tls")) admin.tls = parse_server_tls(*t, o.at("tls"));

  const bool client_certs = admin.tls && !admin.tls->client_ca_file.empty();
  if (!address.is_loopback() && admin.token.empty() && !client_certs)
    throw ConfigError(o.at("address"), quote(admin.address) +
                                           " is not a loopback address: the admin API there needs \"token_file\", "
                                           "\"token_env\" or \"tls\" with \"client_ca\"");
  if (admin.port != 0) {
    for (std::size_t i = 0; i < listeners.size(); ++i) {
      const ListenerOptions& l = listeners[i];
      const auto other = asio::ip::make_address(l.address, ec);
      const bool overlap = !ec && (other == address || other.is_unspecified() || address.is_unspecified());
      if (l.port == admin.port && overlap)
        throw ConfigError(o.at("port"), "port " + std::to_string(admin.port) + " is also listener " +
                                            child(top.at("listeners"), i) + ": the admin API needs a port of its own");
    }
  }
  return admin;
}

}  // namespace gatehouse::detail
