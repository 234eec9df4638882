// SecurityEvents: the reporter that takes security events from any thread and hands them to sinks
// on one background thread, through a bounded queue. Workers never wait and never allocate
// without bound: a full queue drops the event (counted), and a rate cap per event kind turns a
// flood into a bounded stream plus periodic summaries of what was suppressed.
#pragma once
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "gatehouse/logger.hpp"
#include "gatehouse/security_event.hpp"
#include "gatehouse/security_event_sinks.hpp"

namespace gatehouse {

/// A token bucket per event kind.
struct SecurityEventRateLimit {
  std::uint32_t per_second = 100;  ///< events of one kind per second, sustained; 0: no cap
  std::uint32_t burst = 200;       ///< events of one kind at once (at least 1)
};

struct SecurityEventsOptions {
  std::vector<std::shared_ptr<EventSink>> sinks{};
  SecurityEventFormat format = SecurityEventFormat::ecs;
  /// Events waiting for the background thread; beyond, events are dropped (counted). Each slot
  /// holds one event (about 600 bytes plus its strings), allocated up front.
  std::size_t queue_size = 8192;
  SecurityEventRateLimit rate_limit_per_kind{};
  /// How often a kind whose events were suppressed or dropped gets a summary event (action
  /// "events-suppressed", labels suppressed and dropped with the counts since the last one).
  std::chrono::milliseconds summary_interval{10'000};
  /// Where sink failures are logged. Null: the process-wide logger.
  std::shared_ptr<Logger> logger{};
};

/// Counts of one kind (or of all).
struct SecurityEventCounts {
  std::uint64_t reported = 0;    ///< report() calls
  std::uint64_t emitted = 0;     ///< handed to the sinks (summaries included)
  std::uint64_t dropped = 0;     ///< lost because the queue was full (or after stop())
  std::uint64_t suppressed = 0;  ///< held back by the rate cap
};

struct SecurityEventsStats {
  SecurityEventCounts total{};
  /// Indexed by static_cast<std::size_t>(SecurityEventKind).
  std::array<SecurityEventCounts, kSecurityEventKindCount> by_kind{};
  std::uint64_t sink_errors = 0;  ///< exceptions thrown by sinks
  std::size_t queued = 0;         ///< events waiting now
};

class SecurityEvents {
 public:
  /// Starts the background thread. Throws std::invalid_argument for a null sink.
  explicit SecurityEvents(SecurityEventsOptions options);
  /// stop().
  ~SecurityEvents();
  SecurityEvents(const SecurityEvents&) = delete;
  SecurityEvents& operator=(const SecurityEvents&) = delete;

  /// Any thread, never blocks: queues the event (time set to now when unset, strings cut to their
  /// bounds), or counts it as suppressed or dropped. For events outside a request (a reload, a
  /// TLS handshake); inside one, Exchange::report fills in the request's facts first.
  void report(SecurityEvent event) noexcept;
  /// Waits until every event reported before the call went to the sinks, pending suppression
  /// summaries included, and the sinks were flushed. False when `timeout` passed first.
  bool flush(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// Asks the sinks to reopen their files (log rotation), on the background thread shortly after.
  /// Only sets a flag and wakes the thread.
  void reopen() noexcept;
  /// Writes what is queued, then ends the background thread. Later reports count as dropped.
  void stop();

  SecurityEventsStats stats() const noexcept;
  const SecurityEventsOptions& options() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gatehouse
