// ns of CPU per request of W3C trace context, one thread, in process: what a listener's policy adds to a
// request (TracePolicy::apply, as the HTTP/1 session calls it) for a new trace, a continued one
// with a tracestate, and an invalid traceparent replaced. Each case refills the request's headers
// as the parser would; that refill alone is measured too and subtracted.
#include <time.h>

#include <cstdio>

#include "core/exchange_access.hpp"
#include "gatehouse/exchange.hpp"
#include "observe/trace_context.hpp"

namespace {

using namespace gatehouse;
constexpr long kIterations = 2'000'000;

// CPU time of this thread, not wall time: on a machine shared with other work the figures stay
// those of the code, not of the queue for a core.
double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

template <class Body>
double ns_per_iteration(Body&& body) {
  for (long i = 0; i < kIterations / 20; ++i) body();  // warm up
  const double start = thread_cpu_ns();
  for (long i = 0; i < kIterations; ++i) body();
  return (thread_cpu_ns() - start) / kIterations;
}

// A browser-like head: the fields a request usually has, plus the trace fields given.
void fill(Headers& h, std::string_view traceparent, std::string_view tracestate) {
  h.clear();
  h.add("host", "api.example.com");
  h.add("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0");
  h.add("accept", "application/json");
  h.add("accept-encoding", "gzip, deflate, br");
  h.add("authorization", "Bearer eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.e30.sig");
  h.add("x-request-id", "0f5c2e9a7b1d4c38");
  if (!traceparent.empty()) h.add("traceparent", traceparent);
  if (!tracestate.empty()) h.add("tracestate", tracestate);
}

}  // namespace

int main() {
  Exchange ex("GET", "/orders/7");
  Headers& h = ex.request().headers();
  const detail::TracePolicy all({.continue_from = TraceContinue::all}, detail::CidrSet{});
  const std::string_view valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const std::string_view invalid = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01";
  const std::string_view state = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

  struct Case {
    const char* name;
    std::string_view traceparent, tracestate;
  };
  const Case cases[] = {{"new trace (no traceparent)", {}, {}},
                        {"continued traceparent", valid, {}},
                        {"continued traceparent + tracestate (2 members)", valid, state},
                        {"invalid traceparent replaced, tracestate dropped", invalid, state}};
  std::printf("case\tns with refill\trefill alone\ttrace context ns\n");
  for (const Case& c : cases) {
    const double refill = ns_per_iteration([&] { fill(h, c.traceparent, c.tracestate); });
    const double total = ns_per_iteration([&] {
      fill(h, c.traceparent, c.tracestate);
      all.apply(ex);
    });
    std::printf("%s\t%.1f\t%.1f\t%.1f\n", c.name, total, refill, total - refill);
  }
  volatile bool sink = false;
  std::printf("parse_traceparent alone\t%.1f\n",
              ns_per_iteration([&] { sink = sink ^ detail::parse_traceparent(valid).has_value(); }));
  return ex.trace_id().size() == 32 ? 0 : 1;
}
