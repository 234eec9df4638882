// A worker's view of one upstream for balancing: the usable endpoints (all of them in panic mode)
// with their weights in force, rebuilt only when the upstream's health generation moves (or an
// ejection ends, or a slow start ramps), and the load-balancing policy that picks among them.
// From the worker's thread only: no locks; a request costs one atomic load here when nothing
// changed.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "gatehouse/load_balancer.hpp"
#include "proxy/upstream_health.hpp"

namespace gatehouse::detail {

/// The endpoints a worker balances over, as of one rebuild. Requests in flight hold theirs.
struct BalancingView {
  std::shared_ptr<const HealthSet> set;
  std::vector<UpstreamEndpoint> endpoints;  // the usable ones, or all in panic mode
  std::vector<std::size_t> full_index;      // endpoints[i] is set->endpoints[full_index[i]]
  std::uint64_t generation = 0;
  bool panic = false;
};

/// One pick: the endpoint, its shared health and its index in the full set.
struct Choice {
  std::shared_ptr<const BalancingView> view;  // keeps the endpoint alive across the attempt
  std::size_t index = 0;                      // into view->endpoints
  const UpstreamEndpoint& endpoint() const noexcept { return view->endpoints[index]; }
  std::size_t full_index() const noexcept { return view->full_index[index]; }
  EndpointHealth& health() const noexcept { return *view->set->health[full_index()]; }
  explicit operator bool() const noexcept { return view != nullptr; }
};

class EndpointChooser {
 public:
  EndpointChooser(std::shared_ptr<UpstreamHealth> health, std::unique_ptr<LoadBalancer> balancer);

  /// The endpoint of one attempt; empty when there is none to try (the request gets 503).
  /// `tried` holds full-set indexes (Choice::full_index) of endpoints this request already tried.
  Choice pick(const Exchange& ex, unsigned attempt, std::span<const std::size_t> tried);
  /// The attempt on `c` began / ended: the policy's load counts and outlier detection.
  void started(const Choice& c) { balancer_->on_attempt_start(c.endpoint()); }
  /// `answered`: a response head arrived.
  void ended(const Choice& c, bool answered, Outcome outcome) {
    balancer_->on_attempt_end(c.endpoint(), answered);
    health_->record(c.health(), outcome);
  }

  LoadBalancer& balancer() noexcept { return *balancer_; }
  UpstreamHealth& health() noexcept { return *health_; }
  /// The view as of the last pick (rebuilt first when out of date).
  const BalancingView& view();
  std::span<const std::uint32_t> weights() const noexcept { return weights_; }

 private:
  void refresh();
  void rebuild(std::int64_t now);
  void update_weights(std::int64_t now);

  std::shared_ptr<UpstreamHealth> health_;
  std::unique_ptr<LoadBalancer> balancer_;
  std::shared_ptr<const BalancingView> view_;
  std::vector<std::uint32_t> weights_;  // parallel to view_->endpoints
  std::uint64_t seen_generation_ = 0;
  std::uint64_t rebuilds_ = 0;
  std::int64_t next_check_ = 0;  // clock ticks of the next ejection end or ramp step; 0: none
  bool ramping_ = false;
};

}  // namespace gatehouse::detail
