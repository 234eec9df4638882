#include "observe/upstream_health_metrics.hpp"

#include <functional>
#include <string>

namespace gatehouse::detail {
namespace {

constexpr std::size_t kMaxSeries = 4096;  // upstreams x endpoints of a large configuration

// One sample per resolved endpoint (samples with equal labels are summed by the registry).
MetricCallback per_endpoint(std::shared_ptr<const UpstreamsInForce> in_force,
                            std::function<void(std::vector<MetricSample>&, const Upstream&, const EndpointState&)> add) {
  return [in_force = std::move(in_force), add = std::move(add)] {
    std::vector<MetricSample> out;
    const auto list = in_force->list.load();
    if (!list) return out;
    for (const auto& up : *list)
      for (const EndpointState& st : up->endpoint_states()) add(out, *up, st);
    return out;
  };
}

}  // namespace

UpstreamHealthMetrics::UpstreamHealthMetrics(MetricsRegistry& r, std::shared_ptr<const UpstreamsInForce> in_force) {
  healthy_ = r.gauge_callback(
      {"gatehouse_upstream_endpoint_healthy",
       "Resolved addresses of an upstream endpoint that pass their active health checks (all, without checks).",
       {"upstream", "endpoint"},
       kMaxSeries},
      per_endpoint(in_force, [](auto& out, const Upstream& u, const EndpointState& st) {
        out.push_back({{u.name(), st.endpoint}, st.health == EndpointState::Health::healthy ? 1.0 : 0.0});
      }));
  ejected_ = r.gauge_callback(
      {"gatehouse_upstream_endpoint_ejected",
       "Resolved addresses of an upstream endpoint ejected by outlier detection now.",
       {"upstream", "endpoint"},
       kMaxSeries},
      per_endpoint(in_force, [](auto& out, const Upstream& u, const EndpointState& st) {
        out.push_back({{u.name(), st.endpoint}, st.ejected ? 1.0 : 0.0});
      }));
  checks_ = r.counter_callback(
      {"gatehouse_upstream_health_checks_total",
       "Active health checks of an upstream endpoint, by result (passed, failed).",
       {"upstream", "endpoint", "result"},
       kMaxSeries * 2},
      per_endpoint(in_force, [](auto& out, const Upstream& u, const EndpointState& st) {
        if (!u.options().health.active) return;
        out.push_back({{u.name(), st.endpoint, "passed"}, static_cast<double>(st.checks_passed)});
        out.push_back({{u.name(), st.endpoint, "failed"}, static_cast<double>(st.checks_failed)});
      }));
  ejections_ = r.counter_callback(
      {"gatehouse_upstream_ejections_total",
       "Ejections of an upstream endpoint by outlier detection (consecutive 5xx or gateway failures).",
       {"upstream", "endpoint"},
       kMaxSeries},
      per_endpoint(in_force, [](auto& out, const Upstream& u, const EndpointState& st) {
        if (!u.options().health.outlier_detection) return;
        out.push_back({{u.name(), st.endpoint}, static_cast<double>(st.ejections_total)});
      }));
}

}  // namespace gatehouse::detail
