#include "proxy/endpoint_chooser.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace gatehouse::detail {

EndpointChooser::EndpointChooser(std::shared_ptr<UpstreamHealth> health, std::unique_ptr<LoadBalancer> balancer)
    : health_(std::move(health)), balancer_(std::move(balancer)) {
  if (!balancer_) throw std::invalid_argument("upstream \"" + health_->upstream() + "\": the load balancer factory returned null");
}

const BalancingView& EndpointChooser::view() {
  refresh();
  return *view_;
}

void EndpointChooser::refresh() {
  const std::uint64_t g = health_->generation();
  if (g != seen_generation_ || !view_) {
    rebuild(health_->now());
    return;
  }
  if (next_check_ == 0 && !ramping_) return;
  const std::int64_t now = health_->now();
  if (next_check_ != 0 && now >= next_check_) {
    rebuild(now);
    return;
  }
  if (ramping_) update_weights(now);
}

void EndpointChooser::rebuild(std::int64_t now) {
  // Ejections that ended come back first (any worker may do it; the first one wins).
  next_check_ = health_->return_expired(now);
  seen_generation_ = health_->generation();
  auto v = std::make_shared<BalancingView>();
  v->set = health_->set();
  v->generation = ++rebuilds_;
  const auto& all = v->set->health;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (!all[i]->usable()) continue;
    v->endpoints.push_back(v->set->endpoints[i]);
    v->full_index.push_back(i);
  }
  // Panic: too few usable endpoints would take all the load (or none would be left), so balance
  // over every endpoint as if all were healthy.
  const std::uint64_t threshold = health_->options().panic_threshold_percent;
  const std::uint64_t usable = v->endpoints.size(), total = all.size();
  if (total != 0 && threshold != 0 && usable * 100 < threshold * total) {
    v->panic = true;
    v->endpoints = v->set->endpoints;
    v->full_index.resize(total);
    for (std::size_t i = 0; i < total; ++i) v->full_index[i] = i;
  }
  view_ = std::move(v);
  update_weights(now);
}

void EndpointChooser::update_weights(std::int64_t now) {
  const BalancingView& v = *view_;
  weights_.resize(v.endpoints.size());
  ramping_ = false;
  for (std::size_t i = 0; i < v.endpoints.size(); ++i) {
    const EndpointHealth& h = *v.set->health[v.full_index[i]];
    const double factor = health_->weight_factor(h, now);
    ramping_ |= factor < 1.0;
    const double w = static_cast<double>(v.endpoints[i].weight) * 100.0 * factor;
    weights_[i] = static_cast<std::uint32_t>(std::max(1.0, std::round(w)));
  }
}

Choice EndpointChooser::pick(const Exchange& ex, unsigned attempt, std::span<const std::size_t> tried) {
  refresh();
  const BalancingView& v = *view_;
  if (v.endpoints.empty()) return {};
  // The request's tried endpoints, as indexes into this view.
  std::array<std::size_t, 16> local{};
  std::size_t n = 0;
  for (std::size_t full : tried) {
    const auto it = std::find(v.full_index.begin(), v.full_index.end(), full);
    if (it != v.full_index.end() && n < local.size()) local[n++] = static_cast<std::size_t>(it - v.full_index.begin());
  }
  const PickRequest r{ex, v.endpoints, attempt, std::span<const std::size_t>(local.data(), n), weights_, v.generation};
  const std::size_t index = balancer_->pick(r);
  if (index >= v.endpoints.size()) return {};
  return Choice{view_, index};
}

}  // namespace gatehouse::detail
