#include "middleware/rate_limit_key.hpp"

#include <array>
#include <cstring>
#include <optional>

#include "gatehouse/auth/claims.hpp"

namespace gatehouse::detail {
namespace {

void append_part(std::string& out, RateLimitKeyPart::Kind kind, std::string_view bytes) {
  out += static_cast<char>(kind);
  const auto n = static_cast<std::uint32_t>(bytes.size());
  const char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                       static_cast<char>(n)};
  out.append(len, sizeof len);
  out.append(bytes);
}

// The address cut to its prefix, followed by the prefix length (so /64 and /128 keys differ).
template <std::size_t N>
std::string_view masked(const std::array<unsigned char, N>& addr, unsigned prefix, std::array<char, N + 1>& buf) {
  prefix = std::min<unsigned>(prefix, N * 8);
  for (std::size_t i = 0; i < N; ++i) {
    const unsigned bits = prefix >= (i + 1) * 8 ? 8 : prefix > i * 8 ? prefix - static_cast<unsigned>(i * 8) : 0;
    const unsigned mask = bits == 0 ? 0u : (0xffu << (8 - bits)) & 0xffu;
    buf[i] = static_cast<char>(addr[i] & mask);
  }
  buf[N] = static_cast<char>(prefix);
  return {buf.data(), buf.size()};
}

std::optional<std::string_view> claim_value(const auth::Claims& claims, const std::string& name) {
  const auth::ClaimValue v = !name.empty() && name.front() == '/' ? claims.at(name) : claims.get(name);
  return v.string();
}

}  // namespace

bool build_rate_limit_key(const std::vector<RateLimitKeyPart>& parts, const Exchange& ex, unsigned ipv4_prefix,
                          unsigned ipv6_prefix, std::string& out) {
  using Kind = RateLimitKeyPart::Kind;
  out.clear();
  const auth::Claims* claims = nullptr;
  bool claims_looked_up = false;
  auto verified = [&]() -> const auth::Claims* {
    if (!claims_looked_up) {
      claims = ex.find<auth::Claims>();
      claims_looked_up = true;
    }
    return claims;
  };
  for (const RateLimitKeyPart& p : parts) {
    switch (p.kind) {
      case Kind::client_address: {
        const asio::ip::address& a = ex.client_address();
        if (a.is_v6() && !a.to_v6().is_v4_mapped()) {
          std::array<char, 17> buf;
          append_part(out, p.kind, masked(a.to_v6().to_bytes(), ipv6_prefix, buf));
        } else {
          const asio::ip::address_v4 v4 =
              a.is_v4() ? a.to_v4() : asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
          std::array<char, 5> buf;
          append_part(out, p.kind, masked(v4.to_bytes(), ipv4_prefix, buf));
        }
        break;
      }
      case Kind::route:
        append_part(out, p.kind, ex.route_name());
        break;
      case Kind::subject:
      case Kind::api_key:
      case Kind::claim: {
        const auth::Claims* c = verified();
        if (!c) return false;
        std::optional<std::string_view> v = p.kind == Kind::subject  ? c->subject()
                                            : p.kind == Kind::api_key ? c->string(kApiKeyIdClaim)
                                                                      : claim_value(*c, p.name);
        if (!v) return false;
        append_part(out, p.kind, *v);
        break;
      }
      case Kind::header: {
        std::optional<std::string_view> v = ex.request().headers().get(p.name);
        if (!v) return false;
        append_part(out, p.kind, *v);
        break;
      }
    }
  }
  return true;
}

namespace {

std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept {
  const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

std::uint64_t load64(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

std::uint64_t rate_limit_key_hash(std::string_view bytes, std::uint64_t seed) noexcept {
  // Multiply-fold rounds keyed by the seed (the shape of wyhash); not cryptographic, but without the
  // seed a client cannot predict which bucket a key lands in.
  constexpr std::uint64_t k1 = 0xa0761d6478bd642full, k2 = 0xe7037ed1a0b428dbull, k3 = 0x8ebc6af09c88c6e3ull;
  std::uint64_t h = seed ^ mix(seed ^ k1, bytes.size() ^ k2);
  const char* p = bytes.data();
  std::size_t n = bytes.size();
  for (; n >= 16; p += 16, n -= 16) h = mix(load64(p) ^ k1 ^ h, load64(p + 8) ^ k2 ^ seed);
  std::uint64_t a = 0, b = 0;
  if (n >= 8) {
    a = load64(p);
    p += 8;
    n -= 8;
  }
  for (std::size_t i = 0; i < n; ++i) b |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  h = mix(a ^ k1 ^ h, b ^ k3 ^ seed);
  return mix(h ^ k3, h ^ bytes.size() ^ k2);
}

}  // namespace gatehouse::detail
