#include "net/prefix_set.hpp"

#include <algorithm>
#include <numeric>

namespace gatehouse::detail {
namespace {

template <class T>
void sort_and_merge(std::vector<T>& lo, std::vector<T>& hi, auto adjacent) {
  std::vector<std::size_t> order(lo.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return lo[a] < lo[b]; });
  std::vector<T> out_lo, out_hi;
  out_lo.reserve(lo.size());
  out_hi.reserve(lo.size());
  for (std::size_t i : order) {
    // Overlapping or adjacent to the last interval: extend it (fewer intervals, same answers).
    if (!out_lo.empty() && (lo[i] <= out_hi.back() || adjacent(out_hi.back(), lo[i]))) {
      out_hi.back() = std::max(out_hi.back(), hi[i]);
      continue;
    }
    out_lo.push_back(lo[i]);
    out_hi.push_back(hi[i]);
  }
  out_lo.shrink_to_fit();
  out_hi.shrink_to_fit();
  lo = std::move(out_lo);
  hi = std::move(out_hi);
}

std::uint32_t v4_mask(unsigned prefix) noexcept {
  return prefix == 0 ? 0u : ~std::uint32_t{0} << (32 - prefix);
}

std::uint64_t load_be64(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

void PrefixSet::add(const Cidr& block) {
  ++added_;
  const auto& b = block.network();
  const unsigned prefix = block.prefix_length();
  if (block.is_v4()) {
    const std::uint32_t net = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
    v4_lo_.push_back(net);
    v4_hi_.push_back(net | ~v4_mask(prefix));
    return;
  }
  U128 lo{load_be64(b.data()), load_be64(b.data() + 8)};
  U128 hi = lo;
  if (prefix < 64) {
    hi.hi |= prefix == 0 ? ~0ull : (~0ull >> prefix);
    hi.lo = ~0ull;
  } else if (prefix < 128) {
    hi.lo |= ~0ull >> (prefix - 64);
  }
  v6_lo_.push_back(lo);
  v6_hi_.push_back(hi);

  // The part of the block inside ::ffff:0:0/96 is also an IPv4 interval: IPv4 clients (and mapped
  // ones) are looked up there only.
  constexpr U128 mapped_lo{0, 0x0000ffff00000000ull}, mapped_hi{0, 0x0000ffffffffffffull};
  if (hi < mapped_lo || mapped_hi < lo) return;
  const U128 from = std::max(lo, mapped_lo), to = std::min(hi, mapped_hi);
  v4_lo_.push_back(static_cast<std::uint32_t>(from.lo));
  v4_hi_.push_back(static_cast<std::uint32_t>(to.lo));
}

bool PrefixSet::add(std::string_view text) {
  const auto block = Cidr::parse(text);
  if (!block) return false;
  add(*block);
  return true;
}

void PrefixSet::build() {
  // `next` starts right after `end` (no wrap-around: `next` > `end` is known here).
  sort_and_merge(v4_lo_, v4_hi_, [](std::uint32_t end, std::uint32_t next) { return next - end == 1; });
  sort_and_merge(v6_lo_, v6_hi_, [](U128 end, U128 next) {
    return end.lo == ~0ull ? (next.hi == end.hi + 1 && next.lo == 0) : (next.hi == end.hi && next.lo == end.lo + 1);
  });
}

bool PrefixSet::contains_v4(std::uint32_t a) const noexcept {
  // The last interval starting at or below `a` is the only one that can hold it.
  const auto it = std::upper_bound(v4_lo_.begin(), v4_lo_.end(), a);
  if (it == v4_lo_.begin()) return false;
  return a <= v4_hi_[static_cast<std::size_t>(it - v4_lo_.begin()) - 1];
}

bool PrefixSet::contains_v6(U128 a) const noexcept {
  const auto it = std::upper_bound(v6_lo_.begin(), v6_lo_.end(), a);
  if (it == v6_lo_.begin()) return false;
  return a <= v6_hi_[static_cast<std::size_t>(it - v6_lo_.begin()) - 1];
}

bool PrefixSet::contains(const asio::ip::address& addr) const noexcept {
  if (addr.is_v4()) return contains_v4(addr.to_v4().to_uint());
  const auto v6 = addr.to_v6();
  const auto bytes = v6.to_bytes();
  if (v6.is_v4_mapped())
    return contains_v4((std::uint32_t{bytes[12]} << 24) | (std::uint32_t{bytes[13]} << 16) |
                       (std::uint32_t{bytes[14]} << 8) | bytes[15]);
  return contains_v6(U128{load_be64(bytes.data()), load_be64(bytes.data() + 8)});
}

}  // namespace gatehouse::detail
