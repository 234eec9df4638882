// A large, immutable set of CIDR blocks with fast membership tests: the blocks are merged into
// sorted, disjoint address intervals, and a lookup is one binary search (about 20 steps for half a
// million blocks). Built once (from the configuration or a list file), then only read.
#pragma once
#include <compare>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <asio/ip/address.hpp>

#include "net/cidr.hpp"

namespace gatehouse::detail {

class PrefixSet {
 public:
  PrefixSet() = default;

  /// Collects blocks; build() merges them. Until then contains() sees none of them.
  void add(const Cidr& block);
  /// Parses and adds one block; false (and nothing added) when it does not parse.
  bool add(std::string_view text);
  /// Sorts and merges what add() collected. Call once, before sharing the set between threads.
  void build();

  /// IPv4 and IPv4-mapped IPv6 addresses are looked up among the IPv4 intervals (IPv6 blocks that
  /// cover part of ::ffff:0:0/96 add theirs there), other IPv6 addresses among the IPv6 ones.
  /// Never allocates, never throws; safe from any number of threads once built.
  bool contains(const asio::ip::address& addr) const noexcept;

  /// Blocks added (before merging).
  std::size_t size() const noexcept { return added_; }
  bool empty() const noexcept { return added_ == 0; }
  /// Disjoint intervals after build(): the lookup's search space.
  std::size_t intervals() const noexcept { return v4_lo_.size() + v6_lo_.size(); }

 private:
  struct U128 {
    std::uint64_t hi = 0, lo = 0;
    friend auto operator<=>(const U128&, const U128&) = default;
  };
  bool contains_v4(std::uint32_t a) const noexcept;
  bool contains_v6(U128 a) const noexcept;

  // Kept as separate arrays: the binary search touches only the lower bounds.
  std::vector<std::uint32_t> v4_lo_, v4_hi_;
  std::vector<U128> v6_lo_, v6_hi_;
  std::size_t added_ = 0;
};

}  // namespace gatehouse::detail
