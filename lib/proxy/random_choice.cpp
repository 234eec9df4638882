// The "random" load-balancing policy: an endpoint at random, in proportion to its weight.
#include "gatehouse/load_balancers.hpp"
#include "proxy/weighted_draw.hpp"

namespace gatehouse {
namespace {

class RandomChoice final : public LoadBalancer {
 public:
  std::size_t pick(const PickRequest& r) override {
    const std::size_t i = draw_.draw(r, true);
    return i < r.endpoints.size() ? i : draw_.draw(r, false);  // all tried: any will do
  }

 private:
  detail::WeightedDraw draw_;
};

}  // namespace

LoadBalancerFactory random_choice() {
  return [] { return std::make_unique<RandomChoice>(); };
}

}  // namespace gatehouse
