#include "util/text.hpp"

namespace gatehouse::detail {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

}  // namespace

std::string to_lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_lower_ascii(c);
  return out;
}

std::string to_hex(const unsigned char* data, std::size_t n) {
  std::string out(2 * n, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kHexDigits[data[i] >> 4];
    out[2 * i + 1] = kHexDigits[data[i] & 0x0f];
  }
  return out;
}

std::string printable(std::string_view s, std::size_t max) {
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
      out.push_back(kHexDigits[c >> 4]);
      out.push_back(kHexDigits[c & 15]);
    }
    ++shown;
  }
  out.push_back('\'');
  return out;
}

std::string without_controls(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (is_control(c)) c = '?';
  }
  return out;
}

}  // namespace gatehouse::detail
