// Rate-limit keys: the bytes that identify "who" a limit counts, built from a request, and the
// keyed hash that places them in the local table.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gatehouse/exchange.hpp"
#include "gatehouse/middleware/rate_limit.hpp"

namespace gatehouse::detail {

/// The claim API keys carry their id in (auth::ApiKeyVerifier).
inline constexpr std::string_view kApiKeyIdClaim = "gatehouse_api_key_id";

/// Writes the key of `parts` for this request into `out` (replacing its content): each part as a
/// kind byte, a 4-byte length and its bytes, so that different combinations never collide. The
/// client address is its network prefix (IPv4-mapped IPv6 counts as IPv4). False when a part is
/// missing from the request (no verified token, no such header or claim): the limit then does not
/// apply.
bool build_rate_limit_key(const std::vector<RateLimitKeyPart>& parts, const Exchange& ex, unsigned ipv4_prefix,
                          unsigned ipv6_prefix, std::string& out);

/// A 64-bit hash of `bytes` keyed with a secret `seed`, so that clients cannot aim their keys at
/// one bucket of the table to push other keys out.
std::uint64_t rate_limit_key_hash(std::string_view bytes, std::uint64_t seed) noexcept;

}  // namespace gatehouse::detail
