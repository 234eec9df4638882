// ns per operation of the metrics hot path, one thread: what the gateway adds to every request
// when metrics are on (bench/metrics_cost.sh runs it next to the end-to-end comparison).
#include <chrono>
#include <cstdio>
#include <memory>

#include "ns_per_iteration.hpp"
#include "gatehouse/exchange.hpp"
#include "gatehouse/metrics.hpp"
#include "observe/gateway_metrics.hpp"

namespace {

using namespace gatehouse;
using bench::ns_per_iteration;
constexpr long kIterations = 5'000'000;

}  // namespace

int main() {
  auto registry = std::make_shared<MetricsRegistry>();
  detail::GatewayMetrics gateway(registry);
  detail::WorkerMetrics worker{gateway, registry->add_shard()};
  const detail::RouteMetrics& route = gateway.route("orders");
  const detail::ListenerMetrics& listener = gateway.listener("public");
  Exchange ex("GET", "/orders/7", {{"host", "api.example.com"}});

  Counter counter = registry->counter({"bench_events_total", "Events.", {"kind"}});
  const MetricSeries series = counter.series({"a"});
  MetricsShard& shard = worker.shard;

  std::printf("operation\tns\n");
  std::printf("exchange_done (requests, duration histogram, bytes in/out, clock read)\t%.1f\n",
              ns_per_iteration(kIterations, [&] { worker.exchange_done(ex, &route, 200); }));
  std::printf("Counter::inc(series)\t%.1f\n", ns_per_iteration(kIterations, [&] { counter.inc(shard, series); }));
  volatile long sink = 0;
  std::printf("(for scale: one steady_clock::now(), which exchange_done includes)\t%.1f\n",
              ns_per_iteration(kIterations, [&] {
                sink = sink + std::chrono::steady_clock::now().time_since_epoch().count();
              }));
  std::printf("Counter::inc({label values}) through the shard's cache\t%.1f\n",
              ns_per_iteration(kIterations, [&] { counter.inc(shard, {"b"}); }));
  std::printf("connection opened + closed\t%.1f\n", ns_per_iteration(kIterations, [&] {
                worker.connection_opened(listener);
                worker.connection_closed(listener);
              }));
  // Keep the results observable.
  return registry->render_prometheus().empty() ? 1 : 0;
}
