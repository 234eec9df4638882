// Host header and absolute-form authority checks (RFC 9110 7.2, RFC 3986 3.2.2). The gateway
// routes on the host and forwards it, so a value that components could read differently (a list,
// userinfo, a path, spaces) is refused instead of passed on.
#pragma once
#include <string_view>

namespace gatehouse::detail {

/// True for host[:port], held stricter than RFC 3986's reg-name: host is a dotted IPv4 address, a
/// bracketed IPv6 address (no zone), or a name of letters, digits, '-' and '_' in non-empty labels
/// separated by '.' (at most 253 bytes; no trailing dot, no escapes, no sub-delims such as ','),
/// and port, when the colon is there, is 1 to 5 digits up to 65535.
bool is_valid_authority(std::string_view authority) noexcept;

}  // namespace gatehouse::detail
