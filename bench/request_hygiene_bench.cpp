// What request hygiene costs per request: the session's head checks (target form, Host, and the
// canonical path, lib/http1/request_checks.cpp) on a clean request, which takes the fast path, and
// on one whose path needs work (escapes, dot-segments, repeated slashes); then canonicalization of
// the path alone. CPU ns per request on the calling thread, and heap allocations per request
// (counted by replacing operator new), after a warm-up as a worker's recycled requests have.
#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include "core/canonical_path.hpp"
#include "core/exchange_access.hpp"
#include "http1/request_checks.hpp"

namespace {

std::atomic<long> g_allocations{0};
constexpr long kIterations = 1'000'000;

double thread_cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

struct Result {
  double ns = 0;
  double allocations = 0;
};

// The request is built once; each round puts the raw target back (as the parser would write it
// into the recycled request) and runs `work`. `baseline` is the cost of putting the target back.
template <class Work>
Result measure(const char* target, Work work) {
  gatehouse::Request req("GET", target);
  req.headers().add("Host", "api.example.com:8443");
  req.headers().add("Accept", "application/json");
  std::string& t = gatehouse::detail::RequestAccess::target(req);
  for (long i = 0; i < kIterations / 10; ++i) {
    t.assign(target);
    work(req);
  }
  const long allocs = g_allocations.load();
  const double start = thread_cpu_ns();
  for (long i = 0; i < kIterations; ++i) {
    t.assign(target);
    work(req);
  }
  const double ns = (thread_cpu_ns() - start) / kIterations;
  return {ns, static_cast<double>(g_allocations.load() - allocs) / kIterations};
}

}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

int main() {
  using gatehouse::Request;
  namespace d = gatehouse::detail;
  const gatehouse::PathPolicy policy{};
  const char* clean = "/api/v1/orders/42/items?expand=lines&limit=20";
  const char* dirty = "/api/v1/./orders/%7euser/../42//items/%2e%2E/items?expand=lines&limit=20";

  const Result base = measure(clean, [](Request&) {});
  const Result head_clean = measure(clean, [&](Request& r) { (void)d::check_request_head(r, policy); });
  const Result head_dirty = measure(dirty, [&](Request& r) { (void)d::check_request_head(r, policy); });
  const Result path_clean = measure(clean, [&](Request& r) {
    (void)d::canonicalize_target(d::RequestAccess::target(r), policy);
  });
  const Result path_dirty = measure(dirty, [&](Request& r) {
    (void)d::canonicalize_target(d::RequestAccess::target(r), policy);
  });

  std::printf("request hygiene, CPU ns per request (%ld requests each; resetting the target: %.1f ns, subtracted)\n",
              kIterations, base.ns);
  std::printf("%-44s %10s %14s\n", "", "ns", "allocations");
  auto row = [&](const char* what, const Result& r) {
    std::printf("%-44s %10.1f %14.3f\n", what, r.ns - base.ns, r.allocations - base.allocations);
  };
  row("head checks, clean path (fast path)", head_clean);
  row("head checks, path needing work", head_dirty);
  row("canonical path only, clean", path_clean);
  row("canonical path only, needing work", path_dirty);
  return 0;
}
