// ns per check of the ban list on the hot path (at accept and per request), one thread: with
// nobody banned, and with 10, 1,000 and 10,000 bans (hits and misses); ns per ban() as the list
// grows. Also the cost of scoring one event (on the security-event thread, not a worker's).
#include <chrono>
#include <cstdio>
#include <memory>

#include "gatehouse/bans.hpp"

namespace {

using namespace gatehouse;
constexpr long kIterations = 5'000'000;

template <class Body>
double ns_per_iteration(Body&& body, long n = kIterations) {
  for (long i = 0; i < n / 20; ++i) body();  // warm up
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) body();
  const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
  return took.count() / static_cast<double>(n);
}

asio::ip::address nth(unsigned i) { return asio::ip::make_address_v4(0x0A000000u + i); }

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each figure out as soon as it is measured
  auto bans = BanList::create({.max_bans = 200'000});
  const auto client = asio::ip::make_address("198.51.100.7");
  volatile bool sink = false;
  std::printf("operation\tns\n");
  std::printf("banned(), nobody banned\t%.1f\n", ns_per_iteration([&] { sink = bans->banned(client); }));
  unsigned made = 0;
  // Not 100,000: each ban() rebuilds the workers' sorted snapshot from the whole map (O(n) per
  // ban), so filling 100,000 one by one takes minutes; the ban() cost is printed per size.
  for (unsigned target : {10u, 1'000u, 10'000u}) {
    const unsigned from = made;
    const auto start = std::chrono::steady_clock::now();
    for (; made < target; ++made) bans->ban(nth(made), std::chrono::hours(1), "bench");
    const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
    std::printf("ban(), growing from %u to %u bans (snapshot rebuilt per ban)\t%.1f\n", from, target,
                took.count() / static_cast<double>(target - from));
    std::printf("banned(), %u bans, not banned\t%.1f\n", target, ns_per_iteration([&] { sink = bans->banned(client); }));
    const auto hit = nth(target / 2);
    std::printf("banned(), %u bans, banned\t%.1f\n", target, ns_per_iteration([&] { sink = bans->banned(hit); }));
  }
  auto scoring = BanList::create({.threshold = 1e12});
  SecurityEvent e;
  e.kind = SecurityEventKind::authentication_failure;
  unsigned i = 0;
  std::printf("observe() one event, 10,000 clients (security-event thread)\t%.1f\n", ns_per_iteration([&] {
                e.client_ip = nth(i++ % 10'000);
                scoring->observe(e);
              }, 1'000'000));
  return sink ? 0 : 0;
}
