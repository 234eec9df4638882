// Drawing an endpoint at random in proportion to its weight, for the random and least-request
// policies: rejection sampling against the largest configured weight, O(1) expected per draw
// (weights only fall below it while an endpoint ramps up), with an O(n) draw as the fallback.
#pragma once
#include <cstdint>
#include <random>

#include "gatehouse/load_balancer.hpp"

namespace gatehouse::detail {

class WeightedDraw {
 public:
  WeightedDraw() : rng_(std::random_device{}()) {}
  explicit WeightedDraw(std::uint64_t seed) : rng_(seed) {}

  /// An index into r.endpoints; `skip_tried`: never one of r.tried (r.endpoints.size() when all were).
  std::size_t draw(const PickRequest& r, bool skip_tried) {
    const std::size_t n = r.endpoints.size();
    if (generation_ != r.generation) {
      generation_ = r.generation;
      max_weight_ = 1;
      for (std::size_t i = 0; i < n; ++i) max_weight_ = std::max<std::uint64_t>(max_weight_, r.endpoints[i].weight * 100ull);
    }
    for (int trial = 0; trial < 32; ++trial) {
      const std::size_t i = below(n);
      if (skip_tried && r.was_tried(i)) continue;
      if (below(max_weight_) < r.weight(i)) return i;
    }
    return linear(r, skip_tried);
  }

  /// A uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_); }

 private:
  std::size_t linear(const PickRequest& r, bool skip_tried) {
    const std::size_t n = r.endpoints.size();
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (!(skip_tried && r.was_tried(i))) total += r.weight(i);
    if (total == 0) return n;
    std::uint64_t x = below(total);
    for (std::size_t i = 0; i < n; ++i) {
      if (skip_tried && r.was_tried(i)) continue;
      if (x < r.weight(i)) return i;
      x -= r.weight(i);
    }
    return n;
  }

  std::mt19937_64 rng_;
  std::uint64_t generation_ = ~std::uint64_t{0};
  std::uint64_t max_weight_ = 1;
};

}  // namespace gatehouse::detail
