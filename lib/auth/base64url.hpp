// Strict base64url (RFC 4648 section 5) as JOSE uses it: no padding, no whitespace.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace gatehouse::auth {

/// Decodes into `out` (replacing its contents). Fails on any character outside [A-Za-z0-9_-]
/// (so on '=', '+', '/', whitespace), on a length of 4n+1, and on non-zero unused trailing bits,
/// so every byte string has exactly one accepted encoding.
bool base64url_decode(std::string_view in, std::string& out);
std::optional<std::string> base64url_decode(std::string_view in);

std::string base64url_encode(const void* data, std::size_t size);
inline std::string base64url_encode(std::string_view bytes) {
  return base64url_encode(bytes.data(), bytes.size());
}

}  // namespace gatehouse::auth
