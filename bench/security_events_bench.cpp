// What a security event costs: Authenticate refusing a request without a credential (401), with
// no SecurityEvents (one pointer test) and with one (event built, filled by Exchange::report,
// queued), in ns on the calling thread; then the background thread's CPU per event (ECS
// formatting and a file sink writing to /dev/null), from the process CPU time.
#include <sys/resource.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "core/exchange_access.hpp"
#include "gatehouse/auth/api_key_verifier.hpp"
#include "gatehouse/middleware/authenticate.hpp"
#include "gatehouse/security_events.hpp"

namespace {

using namespace gatehouse;
constexpr long kIterations = 200'000;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// CPU time of the calling thread: the background thread shares the cores, so wall time would
// count its work (and other processes') against the caller.
double thread_cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

// CPU ns per on_request call on the calling thread; the exchange is built once and reused, as a
// worker recycles them.
double ns_per_refusal(const Authenticate& mw, SecurityEvents* events) {
  Exchange ex("GET", "/orders/7", {{"host", "api.example"}});
  detail::ExchangeAccess::set_route_name(ex, "orders");
  detail::ExchangeAccess::set_security_events(ex, events);
  for (long i = 0; i < kIterations / 10; ++i) (void)mw.on_request(ex);
  const double start = thread_cpu_ns();
  for (long i = 0; i < kIterations; ++i) (void)mw.on_request(ex);
  return (thread_cpu_ns() - start) / kIterations;
}

}  // namespace

int main() {
  auth::ApiKeyVerifierOptions vo;
  vo.keys = {{.sha256 = std::string(64, 'a'), .principal = "svc"}};
  const Authenticate mw(AuthenticateOptions{.verifiers = {std::make_shared<auth::ApiKeyVerifier>(std::move(vo))},
                                            .logger = null_logger()});

  const double off = ns_per_refusal(mw, nullptr);
  auto events = std::make_shared<SecurityEvents>(SecurityEventsOptions{
      .sinks = {std::make_shared<FileEventSink>(FileEventSinkOptions{.path = "/dev/null"})},
      .queue_size = 1 << 18,
      .rate_limit_per_kind = {.per_second = 0}});
  events->flush();
  const double cpu0 = cpu_seconds();
  const double on = ns_per_refusal(mw, events.get());
  events->flush(std::chrono::seconds(60));
  const double cpu = cpu_seconds() - cpu0;
  const SecurityEventsStats s = events->stats();
  const double written = static_cast<double>(s.total.emitted);
  std::printf("401 without credential, no SecurityEvents:  %8.1f ns/request (caller's CPU)\n", off);
  std::printf("401 without credential, with SecurityEvents: %8.1f ns/request (caller's CPU)\n", on);
  std::printf("  cost on the worker thread:                %8.1f ns/event\n", on - off);
  std::printf("  whole process CPU (worker + background):  %8.2f us/event (%.0f written, %llu dropped)\n",
              written > 0 ? cpu * 1e6 / static_cast<double>(kIterations + kIterations / 10) : 0.0, written,
              static_cast<unsigned long long>(s.total.dropped));
  return 0;
}
