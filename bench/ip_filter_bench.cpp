// The cost of IP filtering, one thread: a lookup in a prefix set of 100k and 500k random blocks
// (IPv4 and IPv6; hits and misses), the build of such a set, and the IpFilter middleware's whole
// on_request per request (lookup, verdict, metrics count) next to a linear CidrSet for scale.
// Times are CPU time of the benchmark thread. Run: build/bench/ip_filter_bench (bench/README.md).
#include <time.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <asio/ip/address.hpp>

#include "core/exchange_access.hpp"
#include "gatehouse/exchange.hpp"
#include "gatehouse/metrics.hpp"
#include "gatehouse/middleware/ip_filter.hpp"
#include "net/cidr.hpp"
#include "net/prefix_set.hpp"
#include "observe/gateway_metrics.hpp"

namespace {

using namespace gatehouse;

// Random blocks: 3 in 4 IPv4 (/16 to /32), 1 in 4 IPv6 (/32 to /128 under 2000::/4).
std::vector<std::string> random_blocks(std::size_t n, std::mt19937_64& rng) {
  std::vector<std::string> out;
  out.reserve(n);
  char text[80];
  for (std::size_t i = 0; i < n; ++i) {
    const auto r = rng();
    if (i % 4 == 3) {
      std::snprintf(text, sizeof text, "2%03x:%x:%x:%x::/%u", unsigned(r & 0xfff), unsigned((r >> 12) & 0xffff),
                    unsigned((r >> 28) & 0xffff), unsigned((r >> 44) & 0xffff), unsigned(32 + (r >> 60) % 9 * 12));
    } else {
      std::snprintf(text, sizeof text, "%u.%u.%u.%u/%u", unsigned(r & 0xff), unsigned((r >> 8) & 0xff),
                    unsigned((r >> 16) & 0xff), unsigned((r >> 24) & 0xff), unsigned(16 + (r >> 32) % 17));
    }
    out.emplace_back(text);
  }
  return out;
}

std::vector<asio::ip::address> random_addresses(std::size_t n, std::mt19937_64& rng) {
  std::vector<asio::ip::address> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto r = rng();
    if (i % 4 == 3) {
      asio::ip::address_v6::bytes_type b{};
      for (auto& byte : b) byte = static_cast<unsigned char>(rng());
      b[0] = static_cast<unsigned char>(0x20 | (b[0] & 0x0f));
      out.emplace_back(asio::ip::make_address_v6(b));
    } else {
      out.emplace_back(asio::ip::make_address_v4(static_cast<std::uint32_t>(r)));
    }
  }
  return out;
}

// CPU time of this thread: on a busy machine, wall time would count the other processes' turns.
double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

template <class Body>
double ns_per_call(long iterations, Body&& body) {
  for (long i = 0; i < iterations / 10; ++i) body(i);
  const double start = thread_cpu_ns();
  for (long i = 0; i < iterations; ++i) body(i);
  return (thread_cpu_ns() - start) / static_cast<double>(iterations);
}

}  // namespace

int main() {
  std::mt19937_64 rng(7);
  const auto probes = random_addresses(1 << 16, rng);
  volatile long sink = 0;
  std::printf("operation\tblocks\tns\n");
  for (std::size_t n : {100'000u, 500'000u}) {
    const auto blocks = random_blocks(n, rng);
    const double t0 = thread_cpu_ns();
    detail::PrefixSet set;
    for (const auto& b : blocks) set.add(b);
    set.build();
    const double build_ms = (thread_cpu_ns() - t0) / 1e6;
    long hits = 0;
    for (const auto& a : probes) hits += set.contains(a);
    std::printf("build (parse + sort + merge), ms\t%zu\t%.1f\n", n, build_ms);
    std::printf("PrefixSet::contains (%ld%% hits, %zu intervals)\t%zu\t%.1f\n", hits * 100 / long(probes.size()),
                set.intervals(), n,
                ns_per_call(4'000'000, [&](long i) { sink = sink + set.contains(probes[i & 0xffff]); }));
  }

  // The middleware per request, with the gateway's metrics on: deny list of 500k blocks.
  std::vector<std::string> deny = random_blocks(500'000, rng);
  IpFilter filter({.name = "bench", .deny = std::move(deny), .file_check_interval = std::chrono::milliseconds(0)});
  auto registry = std::make_shared<MetricsRegistry>();
  detail::GatewayMetrics gateway(registry);
  detail::WorkerMetrics worker{gateway, registry->add_shard()};
  Exchange ex("GET", "/orders/7", {{"host", "api.example.com"}});
  detail::ExchangeAccess::set_metrics(ex, &worker, &worker.shard);
  std::printf("IpFilter::on_request (lookup, verdict, metrics count)\t500000\t%.1f\n",
              ns_per_call(2'000'000, [&](long i) {
                detail::ExchangeAccess::set_peer(ex, {probes[i & 0xffff], 40000}, false);
                sink = sink + filter.on_request(ex).is_next();
              }));

  // For scale: the linear CidrSet (used for trusted proxies) with 1k blocks.
  detail::CidrSet linear;
  for (const auto& b : random_blocks(1000, rng)) linear.add(b);
  std::printf("CidrSet::contains, linear scan (for scale)\t1000\t%.1f\n",
              ns_per_call(200'000, [&](long i) { sink = sink + linear.contains(probes[i & 0xffff]); }));
  return sink == -1;
}
