// An upstream's health, shared by every worker: one EndpointHealth per resolved endpoint, written
// by the active checker (one thread) and by the outcomes of real requests (every worker), read by
// the workers' balancing views. Everything a worker touches per request is an atomic: no locks.
//
// Outcomes are gathered in per-endpoint atomics rather than per-worker counters: ejection needs
// "N failures in a row across all workers", which per-worker counters cannot tell without a
// periodic merge (and a merge delays every ejection by its period). The cost stays small because
// the common case, a success on an endpoint with no failure streak, only loads the counters
// (the cache line stays shared between cores); stores happen on failures and on the first
// success after one.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gatehouse/clock.hpp"
#include "gatehouse/load_balancer.hpp"
#include "gatehouse/upstream_health.hpp"

namespace gatehouse::detail {

/// A Clock's reading in nanoseconds since its epoch (0 means "never" in the fields below).
inline std::int64_t clock_ticks(const Clock& c) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(c.now().time_since_epoch()).count();
}

/// How a request (or an attempt of one) to an endpoint ended, for outlier detection.
enum class Outcome : unsigned char {
  success,          ///< a response below 500
  server_error,     ///< 500, 501, 505.. : counts toward consecutive_5xx
  gateway_failure,  ///< refused, reset, timeout, 502/503/504: both counts
  neither,          ///< says nothing about the endpoint (the client went away, a stale pooled connection)
};
/// The outcome of a response head with `status`.
constexpr Outcome outcome_of_status(unsigned status) noexcept {
  if (status == 502 || status == 503 || status == 504) return Outcome::gateway_failure;
  return status >= 500 ? Outcome::server_error : Outcome::success;
}

struct EndpointHealth {
  explicit EndpointHealth(UpstreamEndpoint ep) : endpoint(std::move(ep)) {}
  const UpstreamEndpoint endpoint;

  // Active checks: written on the checker's thread only; `unhealthy` is read by every worker.
  std::atomic<bool> unhealthy{false};
  unsigned streak = 0;        // checker thread: results in a row that disagree with the state
  bool check_running = false;  // checker thread

  // Outlier detection, from every worker.
  std::atomic<std::uint32_t> consecutive_5xx{0};
  std::atomic<std::uint32_t> consecutive_gateway{0};
  std::atomic<std::int64_t> ejected_until{0};  // clock ticks; 0: not ejected
  std::atomic<std::uint32_t> ejections{0};     // the multiplier of the next ejection time
  std::atomic<std::int64_t> returned_at{0};    // when it last became usable again (0: from the start)

  // Counts, for metrics and the admin API.
  std::atomic<std::uint64_t> checks_passed{0}, checks_failed{0}, ejections_total{0};

  bool usable() const noexcept {
    return !unhealthy.load(std::memory_order_relaxed) && ejected_until.load(std::memory_order_relaxed) == 0;
  }
};

/// One published list of endpoints with their health (health[i] belongs to endpoints[i]).
struct HealthSet {
  std::vector<UpstreamEndpoint> endpoints;
  std::vector<std::shared_ptr<EndpointHealth>> health;
};

class UpstreamHealth {
 public:
  UpstreamHealth(std::string upstream, UpstreamHealthOptions options, const Clock& clock = Clock::system());

  const UpstreamHealthOptions& options() const noexcept { return options_; }
  const std::string& upstream() const noexcept { return upstream_; }
  const Clock& clock() const noexcept { return clock_; }
  std::int64_t now() const noexcept { return clock_ticks(clock_); }

  /// Publishes a new list of endpoints (DNS, start), keeping the state of those it already had
  /// (same label and address). From one thread at a time.
  void set_endpoints(std::vector<UpstreamEndpoint> endpoints);
  std::shared_ptr<const HealthSet> set() const { return set_.load(std::memory_order_acquire); }
  /// Changes whenever the set of usable endpoints may have changed.
  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

  /// The outcome of a real request on `e` (any worker). Does nothing without outlier detection.
  void record(EndpointHealth& e, Outcome outcome) noexcept;
  /// An active check's result (checker thread).
  void record_check(EndpointHealth& e, bool passed) noexcept;
  /// Ends the ejections whose time has come (any thread). Returns the earliest end of an ejection
  /// still running, 0 if none.
  std::int64_t return_expired(std::int64_t now) noexcept;
  /// Share of its weight `e` has now: 0.1 just after it came back, 1 after the slow-start window.
  double weight_factor(const EndpointHealth& e, std::int64_t now) const noexcept;
  /// When `e`'s slow start ends (0: not ramping).
  std::int64_t ramp_end(const EndpointHealth& e) const noexcept;
  std::uint32_t ejected_count() const noexcept { return ejected_.load(std::memory_order_relaxed); }

  std::vector<EndpointState> states() const;

 private:
  enum class Reason : unsigned char { consecutive_5xx, gateway_failures };
  void eject(EndpointHealth& e, Reason why) noexcept;
  void changed() noexcept { generation_.fetch_add(1, std::memory_order_acq_rel); }

  std::string upstream_;
  UpstreamHealthOptions options_;
  const Clock& clock_;
  std::atomic<std::shared_ptr<const HealthSet>> set_;
  std::atomic<std::uint64_t> generation_{1};
  std::atomic<std::uint32_t> ejected_{0};
};

}  // namespace gatehouse::detail
