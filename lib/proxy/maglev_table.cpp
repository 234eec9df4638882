#include "proxy/maglev_table.hpp"

#include <algorithm>
#include <stdexcept>

namespace gatehouse::detail {

std::uint64_t stable_hash(std::string_view data, std::uint64_t seed) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ (seed * 0x9e3779b97f4a7c15ULL);
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  // MurmurHash3's fmix64: FNV alone leaves the low bits weak for a modulo.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

bool is_prime(std::size_t n) noexcept {
  if (n < 2) return false;
  for (std::size_t d = 2; d * d <= n; ++d)
    if (n % d == 0) return false;
  return true;
}

MaglevTable::MaglevTable(const std::vector<Member>& members, std::size_t size) {
  if (members.empty()) throw std::invalid_argument("maglev: no members");
  if (!is_prime(size) || size <= members.size())
    throw std::invalid_argument("maglev: the table size must be a prime larger than the number of endpoints");
  const std::size_t n = members.size();
  std::vector<std::uint64_t> offset(n), skip(n), next(n, 0), credit(n, 0);
  std::uint64_t max_weight = 1;
  for (std::size_t i = 0; i < n; ++i) {
    offset[i] = stable_hash(members[i].name, 1) % size;
    skip[i] = stable_hash(members[i].name, 2) % (size - 1) + 1;
    max_weight = std::max<std::uint64_t>(max_weight, std::max<std::uint32_t>(members[i].weight, 1));
  }
  constexpr std::uint32_t kEmpty = ~std::uint32_t{0};
  slots_.assign(size, kEmpty);
  std::size_t filled = 0;
  while (filled < size) {
    for (std::size_t i = 0; i < n && filled < size; ++i) {
      // Weighted turns: each round an endpoint earns its weight and spends max_weight per slot.
      credit[i] += std::max<std::uint32_t>(members[i].weight, 1);
      if (credit[i] < max_weight) continue;
      credit[i] -= max_weight;
      std::uint64_t slot;
      do {
        slot = (offset[i] + next[i] * skip[i]) % size;
        ++next[i];
      } while (slots_[slot] != kEmpty);
      slots_[slot] = static_cast<std::uint32_t>(i);
      ++filled;
    }
  }
}

}  // namespace gatehouse::detail
