#include "net/cidr.hpp"

#include <cstring>

namespace gatehouse::detail {

namespace {

// Longest textual IPv6 address is 45 characters ("ffff:...:255.255.255.255"); anything longer
// is invalid, which lets parse() copy into a stack buffer instead of allocating.
constexpr std::size_t max_address_text = 63;

bool parse_prefix(std::string_view digits, unsigned max, unsigned& out) noexcept {
  if (digits.empty() || digits.size() > 3) return false;
  if (digits.size() > 1 && digits[0] == '0') return false;  // "/08" is ambiguous: reject
  unsigned value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > max) return false;
  out = value;
  return true;
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) noexcept {
  const auto slash = text.find('/');
  const std::string_view addr_text = text.substr(0, slash);
  if (addr_text.empty() || addr_text.size() > max_address_text) return std::nullopt;
  // inet_pton already rejects whitespace and signs, but zone ids ("fe80::1%eth0") are accepted
  // by asio and make no sense in a block.
  for (char c : addr_text) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                    c == '.' || c == ':';
    if (!ok) return std::nullopt;
  }
  char buf[max_address_text + 1];
  std::memcpy(buf, addr_text.data(), addr_text.size());
  buf[addr_text.size()] = '\0';

  Cidr cidr;
  asio::error_code ec;
  if (addr_text.find(':') == std::string_view::npos) {
    const auto v4 = asio::ip::make_address_v4(buf, ec);
    if (ec) return std::nullopt;
    const auto bytes = v4.to_bytes();
    std::memcpy(cidr.bytes_.data(), bytes.data(), bytes.size());
    cidr.v4_ = true;
  } else {
    const auto v6 = asio::ip::make_address_v6(buf, ec);
    if (ec) return std::nullopt;
    cidr.bytes_ = v6.to_bytes();
    cidr.v4_ = false;
  }

  const unsigned max = cidr.v4_ ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos && !parse_prefix(text.substr(slash + 1), max, prefix)) {
    return std::nullopt;
  }
  cidr.prefix_ = static_cast<std::uint8_t>(prefix);

  // Mask host bits so that matching compares network parts only.
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned bit = i * 8;
    if (bit >= prefix) {
      cidr.bytes_[i] = 0;
    } else if (prefix - bit < 8) {
      cidr.bytes_[i] &= static_cast<std::uint8_t>(0xFFu << (8 - (prefix - bit)));
    }
  }
  return cidr;
}

bool Cidr::matches(const std::uint8_t* bytes) const noexcept {
  const unsigned full = prefix_ / 8;
  if (std::memcmp(bytes, bytes_.data(), full) != 0) return false;
  const unsigned rest = prefix_ % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFFu << (8 - rest));
  return (bytes[full] & mask) == bytes_[full];
}

bool Cidr::contains(const asio::ip::address& addr) const noexcept {
  if (v4_) {
    if (addr.is_v4()) return matches(addr.to_v4().to_bytes().data());
    const auto v6 = addr.to_v6();
    if (!v6.is_v4_mapped()) return false;
    return matches(v6.to_bytes().data() + 12);
  }
  if (addr.is_v6()) return matches(addr.to_v6().to_bytes().data());
  // An IPv4 client seen against an IPv6 block: compare its mapped form (::ffff:a.b.c.d).
  std::array<std::uint8_t, 16> mapped{};
  mapped[10] = 0xFF;
  mapped[11] = 0xFF;
  const auto v4 = addr.to_v4().to_bytes();
  std::memcpy(mapped.data() + 12, v4.data(), v4.size());
  return matches(mapped.data());
}

std::string Cidr::to_string() const {
  std::string out;
  if (v4_) {
    asio::ip::address_v4::bytes_type b{};
    std::memcpy(b.data(), bytes_.data(), b.size());
    out = asio::ip::make_address_v4(b).to_string();
  } else {
    out = asio::ip::make_address_v6(bytes_).to_string();
  }
  out += '/';
  out += std::to_string(prefix_);
  return out;
}

bool CidrSet::add(std::string_view text) {
  auto cidr = Cidr::parse(text);
  if (!cidr) return false;
  blocks_.push_back(*cidr);
  return true;
}

bool CidrSet::contains(const asio::ip::address& addr) const noexcept {
  for (const Cidr& block : blocks_) {
    if (block.contains(addr)) return true;
  }
  return false;
}

}  // namespace gatehouse::detail
