#include "http1/authority.hpp"

#include <arpa/inet.h>

#include <array>

namespace gatehouse::detail {
namespace {

bool is_name_byte(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool valid_port(std::string_view p) noexcept {
  if (p.empty() || p.size() > 5) return false;
  unsigned v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v <= 65535;
}

bool valid_ipv6(std::string_view inside) noexcept {
  std::array<char, 64> text{};
  if (inside.empty() || inside.size() >= text.size()) return false;
  if (inside.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos) return false;
  inside.copy(text.data(), inside.size());
  unsigned char bytes[16];
  return ::inet_pton(AF_INET6, text.data(), bytes) == 1;
}

// Dotted labels; a dotted IPv4 address is such a name too, and is then forwarded as written.
bool valid_name(std::string_view host) noexcept {
  if (host.empty() || host.size() > 253) return false;
  std::size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (is_name_byte(c) && ++label <= 63) {
      continue;
    } else {
      return false;
    }
  }
  return label != 0;
}

}  // namespace

bool is_valid_authority(std::string_view a) noexcept {
  if (!a.empty() && a.front() == '[') {
    const auto close = a.find(']');
    if (close == std::string_view::npos || !valid_ipv6(a.substr(1, close - 1))) return false;
    const std::string_view rest = a.substr(close + 1);
    return rest.empty() || (rest.front() == ':' && valid_port(rest.substr(1)));
  }
  const auto colon = a.find(':');
  if (colon == std::string_view::npos) return valid_name(a);
  return valid_name(a.substr(0, colon)) && valid_port(a.substr(colon + 1));
}

}  // namespace gatehouse::detail
