// An absolute http(s) URL split into what a client needs to connect and to send a request.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gatehouse::detail {

struct Url {
  bool tls = true;
  std::string host;        ///< DNS name or IP literal, IPv6 without brackets
  std::uint16_t port = 443;
  std::string target = "/";  ///< path and query, as sent in the request line

  /// "https://host[:port]/path?query". Refuses user info, fragments, empty hosts, bad ports,
  /// control characters and spaces: `error` says why.
  static std::optional<Url> parse(std::string_view text, std::string* error = nullptr);

  /// Host header value: host, with brackets for IPv6, and ":port" unless it is the default.
  std::string authority() const;
  /// "https://authority": two URLs with the same origin may share connections.
  std::string origin() const;
  std::string text() const { return origin() + target; }
};

}  // namespace gatehouse::detail
