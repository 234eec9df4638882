#include "auth/log_text.hpp"

#include <algorithm>

namespace gatehouse::auth {

std::string printable(std::string_view s, std::size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::min(s.size(), max) + 2);
  out.push_back('\'');
  std::size_t shown = 0;
  for (const char ch : s) {
    if (shown == max) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\'' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
    ++shown;
  }
  out.push_back('\'');
  return out;
}

}  // namespace gatehouse::auth
