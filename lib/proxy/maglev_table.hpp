// The Maglev lookup table (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016): every endpoint walks its own permutation of the table's slots and takes
// the next free one in turn, so each owns about table_size / n slots (weighted here: an endpoint
// takes turns in proportion to its weight), and removing one endpoint frees only its slots —
// keys elsewhere stay where they were, but for a small disturbance of the fill order.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse::detail {

/// A 64-bit hash of `data` (FNV-1a folded through a strong finalizer): stable across runs and
/// machines, so that every gateway instance maps a key to the same endpoint.
std::uint64_t stable_hash(std::string_view data, std::uint64_t seed = 0) noexcept;

class MaglevTable {
 public:
  struct Member {
    std::string name;  ///< stable identity: the same name gets the same permutation
    std::uint32_t weight = 1;
  };
  /// `size` must be a prime larger than members.size(); throws std::invalid_argument otherwise.
  MaglevTable(const std::vector<Member>& members, std::size_t size);

  std::size_t size() const noexcept { return slots_.size(); }
  /// The member (index into the constructor's list) owning slot `slot`.
  std::uint32_t at(std::size_t slot) const noexcept { return slots_[slot]; }
  std::uint32_t lookup(std::uint64_t key_hash) const noexcept { return slots_[key_hash % slots_.size()]; }

 private:
  std::vector<std::uint32_t> slots_;
};

bool is_prime(std::size_t n) noexcept;

}  // namespace gatehouse::detail
