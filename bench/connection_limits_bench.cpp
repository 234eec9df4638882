// CPU ns per connection of the listener's connection counts (admit at accept, release at close), one
// thread and four threads on the same listener: what max_connections and
// max_connections_per_client add to a connection (never to a request).
#include <time.h>

#include <cstdio>
#include <thread>
#include <vector>

#include "server/connection_limits.hpp"

namespace {

using gatehouse::detail::ListenerConnections;
constexpr long kIterations = 2'000'000;

double process_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// CPU nanoseconds per admit + release (all threads' CPU time over all connections), each of
// `threads` threads doing kIterations on its own client. CPU time, not wall time: the figure
// stays that of the code on a machine shared with other work.
double ns_per_connection(ListenerConnections& c, int threads, std::size_t max_total, std::size_t max_per_client) {
  const bool per_client = max_per_client != 0;
  auto body = [&](int t) {
    const auto client = asio::ip::make_address_v4(0x0a000001u + static_cast<unsigned>(t));
    for (long i = 0; i < kIterations; ++i)
      if (c.admit(client, max_total, max_per_client) == ListenerConnections::Admit::ok) c.release(client, per_client);
  };
  const double start = process_cpu_ns();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(body, t);
  for (auto& th : pool) th.join();
  return (process_cpu_ns() - start) / (static_cast<double>(kIterations) * threads);
}

}  // namespace

int main() {
  ListenerConnections c;
  std::printf("case\tCPU ns per connection (admit + release)\n");
  for (int threads : {1, 4}) {
    std::printf("%d thread(s), total only (always counted)\t%.1f\n", threads, ns_per_connection(c, threads, 0, 0));
    std::printf("%d thread(s), max_connections\t%.1f\n", threads, ns_per_connection(c, threads, 1'000'000, 0));
    std::printf("%d thread(s), max_connections_per_client\t%.1f\n", threads,
                ns_per_connection(c, threads, 1'000'000, 100));
  }
  return c.open() == 0 ? 0 : 1;
}
