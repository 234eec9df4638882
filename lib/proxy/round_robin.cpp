// The default load-balancing policy and the LoadBalancer defaults.
#include <algorithm>

#include "gatehouse/load_balancer.hpp"

namespace gatehouse {

void LoadBalancer::on_attempt_start(const UpstreamEndpoint&) {}
void LoadBalancer::on_attempt_end(const UpstreamEndpoint&, bool) {}

namespace {

class RoundRobin final : public LoadBalancer {
 public:
  std::size_t pick(const PickRequest& r) override {
    const std::size_t n = r.endpoints.size();
    // A retry goes to an endpoint this request has not tried yet, while there is one.
    for (std::size_t step = 0; step < n; ++step) {
      const std::size_t i = next_++ % n;
      if (std::find(r.tried.begin(), r.tried.end(), i) == r.tried.end()) return i;
    }
    return next_++ % n;
  }

 private:
  std::size_t next_ = 0;
};

}  // namespace

LoadBalancerFactory round_robin() {
  return [] { return std::make_unique<RoundRobin>(); };
}

}  // namespace gatehouse
