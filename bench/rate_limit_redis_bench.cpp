// The shared limiter's cost per decision against a real redis-server on loopback, in process:
// RateLimiter::on_request and the awaited decision (key, SHA-256 of the key, EVALSHA of the GCRA
// script, reply), next to the local limiter in the same run.
//   - one decision at a time: latency (wall) and CPU of the whole gateway process per decision
//     (worker + the Redis client's I/O thread), and redis-server's CPU per decision;
//   - N decisions in flight on one worker (pipelined on the client's one connection): throughput.
// bench/rate_limit_results.md has figures and the command.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include "core/exchange_access.hpp"
#include "gatehouse/exchange.hpp"
#include "gatehouse/metrics.hpp"
#include "gatehouse/middleware/rate_limit.hpp"
#include "gatehouse/redis.hpp"
#include "observe/gateway_metrics.hpp"
#include "support/redis_server.hpp"

namespace {

using namespace gatehouse;
using namespace std::chrono_literals;

double process_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// used_cpu_sys + used_cpu_user of redis-server, from INFO (seconds).
double redis_cpu_s(const test::RedisServer& redis) {
  const std::string info = redis.cli("INFO CPU");
  double total = 0;
  for (const char* field : {"used_cpu_sys:", "used_cpu_user:"}) {
    const auto at = info.find(field);
    if (at != std::string::npos) total += std::strtod(info.c_str() + at + std::char_traits<char>::length(field), nullptr);
  }
  return total;
}

// Settles one decision (on_request and, when deferred, the awaited Redis call).
asio::awaitable<bool> decide(const RateLimiter& limiter, Exchange& ex) {
  Flow f = limiter.on_request(ex);
  if (f.is_later()) f = co_await f.take_work();
  co_return f.is_next();
}

struct Run {
  double wall_s = 0, cpu_s = 0, redis_cpu_s = 0;
  long decisions = 0, admitted = 0;
  std::vector<double> latency_us;
};

// `in_flight` coroutines on one io_context (one worker), each deciding `per_task` times for its own
// client address.
Run run(const RateLimiter& limiter, const test::RedisServer& redis, detail::WorkerMetrics& worker, int in_flight,
        long per_task) {
  asio::io_context io;
  std::vector<std::unique_ptr<Exchange>> exchanges;
  Run r;
  r.latency_us.reserve(static_cast<std::size_t>(in_flight * per_task));
  for (int t = 0; t < in_flight; ++t) {
    exchanges.push_back(std::make_unique<Exchange>("GET", "/orders/7"));
    Exchange& ex = *exchanges.back();
    detail::ExchangeAccess::set_route_name(ex, "orders");
    detail::ExchangeAccess::set_metrics(ex, &worker, &worker.shard);
    detail::ExchangeAccess::set_peer(ex, {asio::ip::address_v4(0x0a000000u + static_cast<unsigned>(t)), 40000}, false);
    asio::co_spawn(
        io,
        [&limiter, &ex, &r, per_task]() -> asio::awaitable<void> {
          for (long i = 0; i < per_task; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            const bool ok = co_await decide(limiter, ex);
            r.latency_us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
            r.admitted += ok;
            ++r.decisions;
          }
        },
        asio::detached);
  }
  const double cpu0 = process_cpu_s(), redis0 = redis_cpu_s(redis);
  const auto wall0 = std::chrono::steady_clock::now();
  io.run();
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  r.cpu_s = process_cpu_s() - cpu0;
  r.redis_cpu_s = redis_cpu_s(redis) - redis0;
  std::sort(r.latency_us.begin(), r.latency_us.end());
  return r;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(p * static_cast<double>(sorted.size())))];
}

void print(const char* name, const Run& r) {
  const auto n = static_cast<double>(r.decisions);
  std::printf("%s\t%ld\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%ld\n", name, r.decisions, n / r.wall_s, r.cpu_s / n * 1e6,
              r.redis_cpu_s / n * 1e6, percentile(r.latency_us, 0.5), percentile(r.latency_us, 0.99),
              r.decisions - r.admitted);
}

}  // namespace

int main(int argc, char** argv) {
  const long scale = argc > 1 ? std::atol(argv[1]) : 1;  // more decisions for steadier figures
  test::RedisServer redis;
  auto client = RedisClient::create({.address = redis.address(), .timeout = 1000ms});
  if (!client->wait_connected(5s)) {
    std::fprintf(stderr, "no connection to redis-server\n");
    return 1;
  }
  auto registry = std::make_shared<MetricsRegistry>();
  detail::GatewayMetrics gateway(registry);
  detail::WorkerMetrics worker{gateway, registry->add_shard()};

  // Never refuses: the cost of an admitted request, the common case. A generous deadline: a
  // timeout here would measure the failure mode, not Redis.
  RateLimitOptions o;
  o.limits = {{.name = "per_client", .requests = 1'000'000'000, .burst = 1'000'000'000,
               .key = {RateLimitKeyPart::client_address()}}};
  const RateLimiter local(o);
  o.shared.redis = client;
  o.shared.timeout = 1000ms;
  const RateLimiter shared(o);

  std::printf("case\tdecisions\tper_s\tgateway_cpu_us\tredis_cpu_us\tp50_us\tp99_us\trefused_or_failed\n");
  run(shared, redis, worker, 1, 2000);  // warm up: connection, script loaded
  print("local limiter, one at a time", run(local, redis, worker, 1, 200'000 * scale));
  print("redis, one at a time", run(shared, redis, worker, 1, 20'000 * scale));
  print("redis, 16 in flight (pipelined)", run(shared, redis, worker, 16, 5'000 * scale));
  print("redis, 128 in flight (pipelined)", run(shared, redis, worker, 128, 1'000 * scale));
  const auto stats = client->stats();
  std::printf("client: calls %llu, timeouts %llu, failed fast %llu\n", static_cast<unsigned long long>(stats.calls),
              static_cast<unsigned long long>(stats.timeouts), static_cast<unsigned long long>(stats.failed_fast));
  return 0;
}
