// Upstream health in the gateway's metrics: callback families read at scrape time from the
// upstreams of the configuration in force (the state lives in per-endpoint atomics, see
// proxy/upstream_health.hpp, so the workers count nothing extra for them).
//   gatehouse_upstream_endpoint_healthy{upstream, endpoint}          gauge: addresses passing active checks
//   gatehouse_upstream_endpoint_ejected{upstream, endpoint}          gauge: addresses ejected now
//   gatehouse_upstream_health_checks_total{upstream, endpoint, result}  counter: passed / failed
//   gatehouse_upstream_ejections_total{upstream, endpoint}           counter
// `endpoint` is the endpoint as configured ("host:port"): bounded by the configuration.
#pragma once
#include <atomic>
#include <memory>
#include <vector>

#include "gatehouse/metrics.hpp"
#include "gatehouse/upstream.hpp"

namespace gatehouse::detail {

/// The upstreams in force, replaced on every reload; read from any thread.
struct UpstreamsInForce {
  std::atomic<std::shared_ptr<const std::vector<std::shared_ptr<Upstream>>>> list;
  void set(std::vector<std::shared_ptr<Upstream>> upstreams) {
    list.store(std::make_shared<const std::vector<std::shared_ptr<Upstream>>>(std::move(upstreams)));
  }
};

class UpstreamHealthMetrics {
 public:
  UpstreamHealthMetrics(MetricsRegistry& registry, std::shared_ptr<const UpstreamsInForce> upstreams);

 private:
  MetricCallbackHandle healthy_, ejected_, checks_, ejections_;
};

}  // namespace gatehouse::detail
