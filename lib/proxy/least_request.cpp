// The "least_request" load-balancing policy: power of two choices over requests in flight.
#include <stdexcept>
#include <utility>
#include <vector>

#include "gatehouse/load_balancers.hpp"
#include "proxy/weighted_draw.hpp"

namespace gatehouse {
namespace {

class LeastRequest final : public LoadBalancer {
 public:
  explicit LeastRequest(unsigned choices) : choices_(choices) {}

  std::size_t pick(const PickRequest& r) override {
    const std::size_t n = r.endpoints.size();
    if (generation_ != r.generation || slot_.size() != n) remap(r);
    std::size_t best = n;
    for (unsigned c = 0; c < choices_; ++c) {
      std::size_t i = draw_.draw(r, true);
      if (i == n) i = draw_.draw(r, false);  // every endpoint was tried: any will do
      // Distinct candidates where there are several: comparing one with itself decides nothing.
      for (int again = 0; i == best && n > 1 && again < 4; ++again) {
        const std::size_t other = draw_.draw(r, true);
        if (other != n) i = other;
      }
      if (best == n || lighter(r, i, best)) best = i;
    }
    return best;
  }

  void on_attempt_start(const UpstreamEndpoint& ep) override { ++active_[find(ep)].second; }
  void on_attempt_end(const UpstreamEndpoint& ep, bool) override {
    auto& count = active_[find(ep)].second;
    if (count > 0) --count;
  }

 private:
  // Fewer requests in flight per unit of weight; a tie keeps the first drawn (itself drawn by
  // weight, so with no load the split follows the weights).
  bool lighter(const PickRequest& r, std::size_t a, std::size_t b) const {
    const std::uint64_t la = active_[slot_[a]].second, lb = active_[slot_[b]].second;
    return la * r.weight(b) < lb * r.weight(a);
  }

  // Counts are kept by address, so they survive the endpoint list changing under requests in flight.
  void remap(const PickRequest& r) {
    generation_ = r.generation;
    view_ = r.endpoints;
    slot_.resize(r.endpoints.size());
    for (std::size_t i = 0; i < r.endpoints.size(); ++i) slot_[i] = find_address(r.endpoints[i].address);
  }
  std::size_t find(const UpstreamEndpoint& ep) {
    // Usually an element of the last pick's list: its position says which.
    if (!view_.empty() && &ep >= view_.data() && &ep < view_.data() + view_.size())
      return slot_[static_cast<std::size_t>(&ep - view_.data())];
    return find_address(ep.address);
  }
  std::size_t find_address(const asio::ip::tcp::endpoint& a) {
    for (std::size_t k = 0; k < active_.size(); ++k)
      if (active_[k].first == a) return k;
    active_.emplace_back(a, 0);
    return active_.size() - 1;
  }

  unsigned choices_;
  detail::WeightedDraw draw_;
  std::vector<std::pair<asio::ip::tcp::endpoint, std::uint32_t>> active_;  // per address
  std::vector<std::size_t> slot_;  // view index -> active_ index
  std::span<const UpstreamEndpoint> view_;
  std::uint64_t generation_ = ~std::uint64_t{0};
};

}  // namespace

LoadBalancerFactory least_request(LeastRequestOptions options) {
  if (options.choice_count < 1) throw std::invalid_argument("least_request: choice_count must be at least 1");
  return [choices = options.choice_count] { return std::make_unique<LeastRequest>(choices); };
}

}  // namespace gatehouse
