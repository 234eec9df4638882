// The default load-balancing policy, smooth weighted round robin, and the LoadBalancer defaults.
#include <cstdint>
#include <vector>

#include "gatehouse/load_balancer.hpp"

namespace gatehouse {

void LoadBalancer::on_attempt_start(const UpstreamEndpoint&) {}
void LoadBalancer::on_attempt_end(const UpstreamEndpoint&, bool) {}

namespace {

// nginx's smooth weighted round robin: every pick adds each endpoint's weight to its score and
// takes the highest score, which then gives back the total. Over a cycle each endpoint is picked
// in proportion to its weight, spread out rather than in bursts; a weight that changes (slow
// start) takes effect at the next pick.
class SmoothRoundRobin final : public LoadBalancer {
 public:
  std::size_t pick(const PickRequest& r) override {
    const std::size_t n = r.endpoints.size();
    if (generation_ != r.generation || score_.size() != n) {
      score_.assign(n, 0);
      generation_ = r.generation;
    }
    std::size_t best = choose(r, true);
    if (best == n) best = choose(r, false);  // every endpoint was tried: any will do
    return best;
  }

 private:
  std::size_t choose(const PickRequest& r, bool skip_tried) {
    const std::size_t n = r.endpoints.size();
    std::size_t best = n;
    std::int64_t total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      // An endpoint this request already tried gains nothing this time (as nginx does).
      if (skip_tried && r.was_tried(i)) continue;
      const auto w = static_cast<std::int64_t>(r.weight(i));
      score_[i] += w;
      total += w;
      if (best == n || score_[i] > score_[best]) best = i;
    }
    if (best != n) score_[best] -= total;
    return best;
  }

  std::vector<std::int64_t> score_;
  std::uint64_t generation_ = ~std::uint64_t{0};
};

}  // namespace

LoadBalancerFactory round_robin() {
  return [] { return std::make_unique<SmoothRoundRobin>(); };
}

}  // namespace gatehouse
