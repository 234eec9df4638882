#include "proxy/upstream_health.hpp"

#include <algorithm>

#include "net/endpoint_text.hpp"
#include "util/log.hpp"

namespace gatehouse::detail {
namespace {

using std::chrono::nanoseconds;

std::int64_t ns(std::chrono::milliseconds d) noexcept { return std::chrono::duration_cast<nanoseconds>(d).count(); }

}  // namespace

UpstreamHealth::UpstreamHealth(std::string upstream, UpstreamHealthOptions options, const Clock& clock)
    : upstream_(std::move(upstream)), options_(std::move(options)), clock_(clock) {
  set_.store(std::make_shared<const HealthSet>());
}

void UpstreamHealth::set_endpoints(std::vector<UpstreamEndpoint> endpoints) {
  const auto previous = set();
  auto next = std::make_shared<HealthSet>();
  next->health.reserve(endpoints.size());
  for (auto& ep : endpoints) {
    std::shared_ptr<EndpointHealth> kept;
    for (const auto& h : previous->health)
      if (h->endpoint.address == ep.address && h->endpoint.label == ep.label && h->endpoint.weight == ep.weight) kept = h;
    next->health.push_back(kept ? kept : std::make_shared<EndpointHealth>(ep));
  }
  // An ejected endpoint that DNS no longer returns must not keep its place in the ejection budget.
  for (const auto& h : previous->health) {
    if (std::find(next->health.begin(), next->health.end(), h) != next->health.end()) continue;
    std::int64_t until = h->ejected_until.load();
    if (until != 0 && h->ejected_until.compare_exchange_strong(until, 0)) ejected_.fetch_sub(1);
  }
  next->endpoints = std::move(endpoints);
  set_.store(std::move(next), std::memory_order_release);
  changed();
}

void UpstreamHealth::record(EndpointHealth& e, Outcome outcome) noexcept {
  if (!options_.outlier_detection || outcome == Outcome::neither) return;
  const OutlierDetectionOptions& o = *options_.outlier_detection;
  constexpr auto relaxed = std::memory_order_relaxed;
  if (outcome == Outcome::success) {
    // Loads first: the streaks are almost always 0, and a load keeps the line shared.
    if (e.consecutive_5xx.load(relaxed) != 0) e.consecutive_5xx.store(0, relaxed);
    if (e.consecutive_gateway.load(relaxed) != 0) e.consecutive_gateway.store(0, relaxed);
    return;
  }
  const std::uint32_t errors = e.consecutive_5xx.fetch_add(1, relaxed) + 1;
  std::uint32_t gateway = 0;
  if (outcome == Outcome::gateway_failure) gateway = e.consecutive_gateway.fetch_add(1, relaxed) + 1;
  else if (e.consecutive_gateway.load(relaxed) != 0) e.consecutive_gateway.store(0, relaxed);
  if (o.consecutive_gateway_failures != 0 && gateway >= o.consecutive_gateway_failures)
    eject(e, Reason::gateway_failures);
  else if (o.consecutive_5xx != 0 && errors >= o.consecutive_5xx)
    eject(e, Reason::consecutive_5xx);
}

void UpstreamHealth::eject(EndpointHealth& e, Reason why) noexcept {
  const OutlierDetectionOptions& o = *options_.outlier_detection;
  if (e.ejected_until.load() != 0) return;
  const auto total = static_cast<std::uint64_t>(set()->health.size());
  // Reserve a place in the ejection budget first: at most max_ejection_percent, one always.
  std::uint32_t count = ejected_.load();
  do {
    if (count != 0 && (std::uint64_t{count} + 1) * 100 > std::uint64_t{o.max_ejection_percent} * total) return;
  } while (!ejected_.compare_exchange_weak(count, count + 1));
  const std::int64_t now = clock_ticks(clock_);
  // The multiplier decays by one for every base_ejection_time spent back in service.
  std::uint32_t times = e.ejections.load();
  if (const std::int64_t back = e.returned_at.load(); back != 0 && o.base_ejection_time.count() > 0) {
    const std::int64_t decay = (now - back) / ns(o.base_ejection_time);
    times = decay >= times ? 0 : times - static_cast<std::uint32_t>(decay);
  }
  ++times;
  const std::int64_t length = std::min(ns(o.base_ejection_time) * times, ns(o.max_ejection_time));
  std::int64_t expected = 0;
  if (!e.ejected_until.compare_exchange_strong(expected, now + std::max<std::int64_t>(length, 1))) {
    ejected_.fetch_sub(1);  // another worker ejected it first
    return;
  }
  e.ejections.store(times);
  e.ejections_total.fetch_add(1, std::memory_order_relaxed);
  e.consecutive_5xx.store(0);
  e.consecutive_gateway.store(0);
  changed();
  log(nullptr, LogLevel::warning, "upstream endpoint ejected by outlier detection",
      {{"upstream", upstream_},
       {"endpoint", e.endpoint.label},
       {"reason", why == Reason::gateway_failures ? "consecutive gateway failures" : "consecutive 5xx"},
       {"ejection_ms", std::to_string(length / 1'000'000)}});
}

std::int64_t UpstreamHealth::return_expired(std::int64_t now) noexcept {
  std::int64_t earliest = 0;
  if (ejected_.load() == 0) return 0;
  const auto s = set();
  for (const auto& h : s->health) {
    std::int64_t until = h->ejected_until.load();
    if (until == 0) continue;
    if (until > now) {
      earliest = earliest == 0 ? until : std::min(earliest, until);
      continue;
    }
    if (!h->ejected_until.compare_exchange_strong(until, 0)) continue;  // another thread did it
    h->returned_at.store(now);
    ejected_.fetch_sub(1);
    changed();
    log(nullptr, LogLevel::info, "upstream endpoint back from ejection",
        {{"upstream", upstream_}, {"endpoint", h->endpoint.label}});
  }
  return earliest;
}

void UpstreamHealth::record_check(EndpointHealth& e, bool passed) noexcept {
  const HealthCheckOptions& o = *options_.active;
  (passed ? e.checks_passed : e.checks_failed).fetch_add(1, std::memory_order_relaxed);
  const bool unhealthy = e.unhealthy.load();
  if (passed != unhealthy) {  // agrees with the state it is in
    e.streak = 0;
    return;
  }
  if (++e.streak < (unhealthy ? o.healthy_threshold : o.unhealthy_threshold)) return;
  e.streak = 0;
  if (unhealthy) e.returned_at.store(clock_ticks(clock_));
  e.unhealthy.store(!unhealthy);
  changed();
  log(nullptr, unhealthy ? LogLevel::info : LogLevel::warning,
      unhealthy ? "upstream endpoint healthy again" : "upstream endpoint failed its health checks",
      {{"upstream", upstream_}, {"endpoint", e.endpoint.label}});
}

std::int64_t UpstreamHealth::ramp_end(const EndpointHealth& e) const noexcept {
  const std::int64_t back = e.returned_at.load(std::memory_order_relaxed);
  if (back == 0 || options_.slow_start.count() <= 0) return 0;
  return back + ns(options_.slow_start);
}

double UpstreamHealth::weight_factor(const EndpointHealth& e, std::int64_t now) const noexcept {
  const std::int64_t end = ramp_end(e);
  if (end == 0 || now >= end) return 1.0;
  const double window = static_cast<double>(ns(options_.slow_start));
  const double elapsed = static_cast<double>(now - (end - ns(options_.slow_start)));
  return std::clamp(elapsed / window, 0.1, 1.0);
}

std::vector<EndpointState> UpstreamHealth::states() const {
  const auto s = set();
  const std::int64_t now = clock_ticks(clock_);
  std::vector<EndpointState> out;
  out.reserve(s->health.size());
  for (const auto& h : s->health) {
    EndpointState st;
    st.endpoint = h->endpoint.label;
    st.address = endpoint_text(h->endpoint.address);
    st.weight = h->endpoint.weight;
    st.health = h->unhealthy.load() ? EndpointState::Health::unhealthy : EndpointState::Health::healthy;
    const std::int64_t until = h->ejected_until.load();
    st.ejected = until != 0 && until > now;
    if (st.ejected) st.ejected_for = std::chrono::duration_cast<std::chrono::milliseconds>(nanoseconds(until - now));
    st.ejections = h->ejections.load();
    st.weight_factor = st.usable() ? weight_factor(*h, now) : 0.0;
    st.checks_passed = h->checks_passed.load();
    st.checks_failed = h->checks_failed.load();
    st.ejections_total = h->ejections_total.load();
    out.push_back(std::move(st));
  }
  return out;
}

}  // namespace gatehouse::detail
