// RFC 9110 §5.6.2 tokens: header names, method names, Authorization schemes.
#pragma once
#include <string_view>

namespace gatehouse::detail {

constexpr bool is_tchar(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

constexpr bool is_http_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

}  // namespace gatehouse::detail
