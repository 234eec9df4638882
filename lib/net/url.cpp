#include "net/url.hpp"

#include <charconv>

namespace gatehouse::detail {
namespace {

std::nullopt_t fail(std::string* error, const char* why) {
  if (error) *error = why;
  return std::nullopt;
}

bool lower_equals(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
    if (c != lower[i]) return false;
  }
  return true;
}

}  // namespace

std::optional<Url> Url::parse(std::string_view text, std::string* error) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return fail(error, "control character or space in URL");
  }
  Url url;
  const auto scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) return fail(error, "expected an absolute http:// or https:// URL");
  const std::string_view scheme = text.substr(0, scheme_end);
  if (lower_equals(scheme, "https")) {
    url.tls = true;
    url.port = 443;
  } else if (lower_equals(scheme, "http")) {
    url.tls = false;
    url.port = 80;
  } else {
    return fail(error, "the scheme must be http or https");
  }
  std::string_view rest = text.substr(scheme_end + 3);
  if (rest.find('#') != std::string_view::npos) return fail(error, "a URL fragment is not allowed");
  const auto path_start = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_start);
  if (path_start != std::string_view::npos) {
    const std::string_view target = rest.substr(path_start);
    url.target.clear();
    if (target.front() == '?') url.target += '/';  // appended: g++ 12 -O3 warns on "/" + string
    url.target.append(target);
  }
  if (authority.find('@') != std::string_view::npos) return fail(error, "user info in a URL is not allowed");
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return fail(error, "unclosed '[' in the host");
    url.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail(error, "unexpected characters after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) return fail(error, "empty port");
    }
  } else {
    const auto colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return fail(error, "empty port");
    }
    if (url.host.find_first_of(":[]") != std::string::npos) return fail(error, "invalid host");
  }
  if (url.host.empty()) return fail(error, "the URL has no host");
  if (!port_text.empty()) {
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      return fail(error, "the port must be 1..65535");
    }
    url.port = static_cast<std::uint16_t>(port);
  }
  return url;
}

std::string Url::authority() const {
  std::string out;
  const bool v6 = host.find(':') != std::string::npos;
  if (v6) out += '[';
  out.append(host);
  if (v6) out += ']';
  if (port != (tls ? 443 : 80)) {
    out += ':';
    out += std::to_string(port);
  }
  return out;
}

std::string Url::origin() const {
  std::string out = tls ? "https://" : "http://";
  out += authority();
  return out;
}

}  // namespace gatehouse::detail
