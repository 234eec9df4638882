// CIDR blocks ("10.0.0.0/8", "fd00::/8", "::1") and sets of them, for trusted-proxy checks.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/address.hpp>

namespace gatehouse::detail {

/// One IPv4 or IPv6 block. Host bits below the prefix are masked off when parsing.
class Cidr {
 public:
  /// Strict: "a.b.c.d[/0..32]" or "<ipv6>[/0..128]", no whitespace, signs, leading zeros in the
  /// prefix, or zone ids. A bare address is a /32 or /128.
  static std::optional<Cidr> parse(std::string_view text) noexcept;

  /// IPv4-mapped IPv6 addresses (::ffff:1.2.3.4) are matched against IPv4 blocks, and IPv4
  /// addresses against IPv6 blocks in their mapped form. Never allocates.
  bool contains(const asio::ip::address& addr) const noexcept;

  bool is_v4() const noexcept { return v4_; }
  unsigned prefix_length() const noexcept { return prefix_; }
  /// The masked network address: 4 bytes for IPv4 (the rest zero), 16 for IPv6.
  const std::array<std::uint8_t, 16>& network() const noexcept { return bytes_; }
  /// Canonical form with the masked network address, e.g. "10.0.0.0/8".
  std::string to_string() const;

 private:
  Cidr() = default;
  bool matches(const std::uint8_t* bytes) const noexcept;

  std::array<std::uint8_t, 16> bytes_{};  // network address; only the first 4 used for IPv4
  std::uint8_t prefix_ = 0;
  bool v4_ = true;
};

/// A list of blocks; contains() is true if any block contains the address.
class CidrSet {
 public:
  /// Parses and adds one block; false (and the set unchanged) if it does not parse.
  bool add(std::string_view text);
  bool contains(const asio::ip::address& addr) const noexcept;
  bool empty() const noexcept { return blocks_.empty(); }
  std::size_t size() const noexcept { return blocks_.size(); }

 private:
  std::vector<Cidr> blocks_;
};

}  // namespace gatehouse::detail
