// ns per request of the local rate limiter's check (RateLimiter::on_request), in process, next to
// the same request with no limiter: what a local limit adds to a proxied request. One thread, and
// two threads sharing one key (contention on one cache line). bench/rate_limit_results.md.
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/exchange_access.hpp"
#include "gatehouse/exchange.hpp"
#include "gatehouse/metrics.hpp"
#include "gatehouse/middleware/rate_limit.hpp"
#include "middleware/rate_limit_key.hpp"
#include "middleware/rate_limit_table.hpp"
#include "observe/gateway_metrics.hpp"

namespace {

using namespace gatehouse;
constexpr long kIterations = 2'000'000;

// CPU time of this thread, not wall time: on a shared machine other processes' time slices would
// otherwise count as ours.
double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

template <class Body>
double ns_per_iteration(Body&& body, long iterations = kIterations) {
  for (long i = 0; i < iterations / 20; ++i) body(i);  // warm up
  const double start = thread_cpu_ns();
  for (long i = 0; i < iterations; ++i) body(i);
  return (thread_cpu_ns() - start) / static_cast<double>(iterations);
}

std::shared_ptr<RateLimiter> limiter(std::vector<RateLimit> limits, RateLimitHeaders headers = RateLimitHeaders::denied) {
  RateLimitOptions o;
  o.limits = std::move(limits);
  o.headers = headers;
  return std::make_shared<RateLimiter>(std::move(o));
}

}  // namespace

int main() {
  auto registry = std::make_shared<MetricsRegistry>();
  detail::GatewayMetrics gateway(registry);
  detail::WorkerMetrics worker{gateway, registry->add_shard()};
  Exchange ex("GET", "/orders/7", {{"host", "api.example.com"}, {"x-tenant", "acme"}});
  detail::ExchangeAccess::set_route_name(ex, "orders");
  detail::ExchangeAccess::set_metrics(ex, &worker, &worker.shard);

  // Never refuses: the cost of an admitted request, the common case.
  const auto per_client = limiter({{.name = "per_client", .requests = 1'000'000'000, .burst = 1'000'000'000,
                                    .key = {RateLimitKeyPart::client_address()}}});
  const auto two_limits = limiter({{.name = "per_client", .requests = 1'000'000'000, .burst = 1'000'000'000,
                                    .key = {RateLimitKeyPart::client_address()}},
                                   {.name = "per_tenant_route", .requests = 1'000'000'000, .burst = 1'000'000'000,
                                    .key = {RateLimitKeyPart::header("x-tenant"), RateLimitKeyPart::route()}}});
  const auto all_headers = limiter({{.name = "per_client", .requests = 1'000'000'000, .burst = 1'000'000'000,
                                     .key = {RateLimitKeyPart::client_address()}}},
                                    RateLimitHeaders::all);
  const auto tight = limiter({{.name = "tight", .requests = 1, .period = std::chrono::hours(1), .burst = 1}});

  std::printf("operation\tns\n");
  volatile bool sink = false;
  std::printf("no limiter (baseline: the loop and a Flow)\t%.1f\n",
              ns_per_iteration([&](long) { sink = Flow::next().is_next(); }));
  std::printf("one limit, key client_address, admitted\t%.1f\n",
              ns_per_iteration([&](long) { sink = per_client->on_request(ex).is_next(); }));
  // The parts of one check.
  std::string key;
  std::printf("  part: key built from the request (client_address)\t%.1f\n", ns_per_iteration([&](long) {
                sink = detail::build_rate_limit_key({RateLimitKeyPart::client_address()}, ex, 32, 64, key);
              }));
  std::printf("  part: key hash\t%.1f\n",
              ns_per_iteration([&](long) { sink = detail::rate_limit_key_hash(key, 12345) != 0; }));
  detail::RateLimitTable table(100'000);
  const detail::Gcra g{1, 1'000'000'000};
  std::printf("  part: table decision (one bucket read, one compare-and-swap)\t%.1f\n",
              ns_per_iteration([&](long i) { sink = table.decide(42, i, g).decision.allowed; }));
  std::printf("  part: clock read (steady_clock)\t%.1f\n", ns_per_iteration([&](long) {
                sink = std::chrono::steady_clock::now().time_since_epoch().count() != 0;
              }));
  std::printf("  part: decision counted (metrics, 3 labels)\t%.1f\n",
              ns_per_iteration([&](long) { detail::count_rate_limit(ex, "per_client", "allowed"); }));
  std::printf("two limits (client_address; header + route), admitted\t%.1f\n",
              ns_per_iteration([&](long) { sink = two_limits->on_request(ex).is_next(); }));
  // 50,000 distinct clients in turn: table lookups miss the CPU caches as with real traffic.
  std::vector<asio::ip::tcp::endpoint> peers;
  for (unsigned i = 0; i < 50'000; ++i) peers.emplace_back(asio::ip::address_v4(0x0a000000u + i), 40000);
  std::printf("one limit, 50,000 distinct clients in turn, admitted\t%.1f\n", ns_per_iteration([&](long i) {
                detail::ExchangeAccess::set_peer(ex, peers[static_cast<std::size_t>(i) % peers.size()], false);
                sink = per_client->on_request(ex).is_next();
              }));
  detail::ExchangeAccess::set_peer(ex, peers[0], false);
  std::printf("one limit, headers \"all\" (on_request + on_response fields)\t%.1f\n", ns_per_iteration([&](long) {
                sink = all_headers->on_request(ex).is_next();
                sink = all_headers->on_response(ex).is_next();
                ex.response().headers().clear();
              }, 500'000));
  std::printf("refused (429 built, no event sink)\t%.1f\n",
              ns_per_iteration([&](long) { sink = tight->on_request(ex).is_response(); }, 500'000));

  // Two threads deciding for one key at once: the cost of sharing the limit between workers.
  std::atomic<bool> go{false};
  double per_thread[2] = {0, 0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      Exchange own("GET", "/orders/7", {{"host", "api.example.com"}});
      while (!go.load()) {
      }
      per_thread[t] = ns_per_iteration([&](long) { sink = per_client->on_request(own).is_next(); }, 1'000'000);
    });
  }
  go = true;
  for (auto& th : threads) th.join();
  std::printf("one limit, two threads on one key at once (per request, each thread)\t%.1f\n",
              (per_thread[0] + per_thread[1]) / 2);
  return registry->render_prometheus().empty() ? 1 : 0;
}
