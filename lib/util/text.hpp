// Small text checks shared across the library. Each one decides what may reach a header, a log
// line or a token check, so there is exactly one definition of each.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace gatehouse::detail {

/// Whether any byte of [p, p + n) is `a`, `b` or `c`, eight bytes per step (SWAR): the parser
/// checks every field name and value with it.
inline bool contains_byte(const char* p, std::size_t n, unsigned char a, unsigned char b, unsigned char c) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ull;
  // Non-zero exactly when some byte of v is zero.
  const auto zero_byte_in = [](std::uint64_t v) { return (v - ones) & ~v & (ones * 0x80); };
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t v;
    std::memcpy(&v, p + i, 8);
    if (zero_byte_in(v ^ (ones * a)) | zero_byte_in(v ^ (ones * b)) | zero_byte_in(v ^ (ones * c))) return true;
  }
  for (; i < n; ++i) {
    const auto x = static_cast<unsigned char>(p[i]);
    if (x == a || x == b || x == c) return true;
  }
  return false;
}

/// C0 controls and DEL: the bytes that may split or forge a header or a log line.
constexpr bool is_control(char c) noexcept { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }

constexpr bool has_control(std::string_view s) noexcept { return std::any_of(s.begin(), s.end(), is_control); }

/// RFC 9110 section 5.5: a field value holds no control byte but HTAB. CR and LF above all must
/// not pass, or a value could smuggle extra header lines.
constexpr bool is_field_value(std::string_view s) noexcept {
  return std::none_of(s.begin(), s.end(), [](char c) { return c != '\t' && is_control(c); });
}

/// Printable ASCII without space (0x21..0x7e).
constexpr bool is_visible_ascii(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f;
}

/// RFC 9110 OWS: spaces and horizontal tabs around a field value or list element.
constexpr std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// RFC 6749 section 3.3 scope-token: 1*( %x21 / %x23-5B / %x5D-7E ). No space, '"' or '\', so a
/// scope also fits a quoted-string (WWW-Authenticate) unescaped.
constexpr bool is_scope_token(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
  });
}

/// Fits between the quotes of a quoted-string without escaping (a realm): no '"', '\' or control.
constexpr bool fits_quoted_string(std::string_view s) noexcept {
  return std::none_of(s.begin(), s.end(), [](char c) { return c == '"' || c == '\\' || is_control(c); });
}

/// 0..15 for a hex digit (either case), -1 otherwise.
constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr char to_lower_ascii(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
std::string to_lower_ascii(std::string_view s);

/// Lowercase hex digits of `n` bytes.
std::string to_hex(const unsigned char* data, std::size_t n);

/// At most `max` characters of `s` in single quotes, with quotes, backslashes and bytes outside
/// printable ASCII escaped (\xNN), so a hostile kid or claim cannot forge log lines. For a client
/// value inside an error detail.
std::string printable(std::string_view s, std::size_t max = 64);

/// `s` with every control byte replaced by '?': one line, whatever a client sent, and otherwise
/// as it was. For whole values (request ids, details) handed to the logger.
std::string without_controls(std::string_view s);

}  // namespace gatehouse::detail
