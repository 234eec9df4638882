// SecurityEvents: producers (worker threads, reload, the application) push into a bounded
// lock-free ring; one background thread formats each event once and hands it to every sink.
//
// Waking the thread: it wakes by itself every kIdleWake (100 ms), which is soon enough for a SIEM
// and paces the sinks' flush (TCP retries); a producer wakes it early only when the queue is a
// quarter full, by notifying the condition variable without the mutex (a worker never takes a
// lock), so such a wakeup can be lost in a narrow window: the periodic wake-up covers it.
//
// Rate cap: GCRA, the token bucket as one atomic "theoretical arrival time" per kind, updated
// with a CAS: no lock, no timer, exact burst and rate.

#include "gatehouse/security_events.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "observe/event_format.hpp"
#include "util/log.hpp"
#include "util/mpsc_ring.hpp"

namespace gatehouse {
namespace {

using steady = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kIdleWake{100};
constexpr std::size_t kFlushEvery = 256;  // events between two sink flushes in a long batch

struct alignas(64) KindState {
  std::atomic<std::int64_t> tat{0};  // GCRA: when the bucket is full again, in steady ns
  std::atomic<std::uint64_t> reported{0};
  std::atomic<std::uint64_t> emitted{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> suppressed{0};
};

// A ring slot. std::chrono's time_point does not declare its default constructor noexcept, nor
// asio's addresses their moves, so the slot says it for them: none of them can throw.
struct QueuedEvent {
  QueuedEvent() noexcept {}
  explicit QueuedEvent(SecurityEvent&& e) noexcept : event(std::move(e)) {}
  SecurityEvent event;
  friend void swap(QueuedEvent& a, QueuedEvent& b) noexcept {
    using std::swap;
    swap(a.event, b.event);
  }
};

std::size_t index_of(SecurityEventKind kind) noexcept {
  const auto i = static_cast<std::size_t>(kind);
  return i < kSecurityEventKindCount ? i : static_cast<std::size_t>(SecurityEventKind::protocol_violation);
}

}  // namespace

struct SecurityEvents::Impl {
  explicit Impl(SecurityEventsOptions o) : options(std::move(o)), ring(std::max<std::size_t>(options.queue_size, 2)) {
    for (const auto& s : options.sinks)
      if (!s) throw std::invalid_argument("SecurityEvents: a sink is null");
    const auto& rl = options.rate_limit_per_kind;
    capped = rl.per_second > 0;
    if (capped) {
      interval_ns = 1'000'000'000 / static_cast<std::int64_t>(rl.per_second);
      if (interval_ns == 0) interval_ns = 1;
      tolerance_ns = interval_ns * std::max<std::int64_t>(rl.burst, 1);
    }
    if (options.summary_interval <= std::chrono::milliseconds::zero()) options.summary_interval = std::chrono::seconds(10);
    wake_threshold = ring.capacity() / 4;
    thread = std::thread([this] { run(); });
  }

  bool admit(KindState& k) noexcept {
    if (!capped) return true;
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch()).count();
    std::int64_t tat = k.tat.load(std::memory_order_relaxed);
    for (;;) {
      const std::int64_t next = std::max(tat, now) + interval_ns;
      if (next - now > tolerance_ns) return false;
      if (k.tat.compare_exchange_weak(tat, next, std::memory_order_relaxed)) return true;
    }
  }

  void report(SecurityEvent& event) noexcept {
    KindState& k = kinds[index_of(event.kind)];
    k.reported.fetch_add(1, std::memory_order_relaxed);
    if (stopped.load(std::memory_order_acquire)) {
      k.dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (!admit(k)) {
      k.suppressed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (event.time == std::chrono::system_clock::time_point{}) event.time = std::chrono::system_clock::now();
    detail::bound_event(event);
    QueuedEvent slot{std::move(event)};
    if (!ring.try_push(slot)) {
      k.dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // Wake the thread only when the queue fills up: otherwise its periodic wake-up (kIdleWake)
    // picks the event up, and the worker spares a futex call per event. seq_cst, paired with the
    // consumer's store before it re-checks the ring (see the file top).
    const std::uint64_t taken = dequeued.load(std::memory_order_relaxed);  // first: claimed() >= taken
    if (ring.claimed() - taken > wake_threshold &&
        sleeping.load(std::memory_order_seq_cst))
      wake.notify_one();
  }

  void note_sink_error(const char* what) noexcept {
    sink_errors.fetch_add(1, std::memory_order_relaxed);
    // One message a minute at most: a dead sink would otherwise log once per event.
    const auto now = steady::now();
    if (now - last_error_log < std::chrono::minutes(1)) return;
    last_error_log = now;
    detail::log(options.logger, LogLevel::warning, "security events: a sink failed", {{"error", what}});
  }

  template <class F>
  void each_sink(F f) noexcept {
    for (const auto& s : options.sinks) {
      try {
        f(*s);
      } catch (const std::exception& e) {
        note_sink_error(e.what());
      } catch (...) {
        note_sink_error("unknown exception");
      }
    }
  }

  void emit(const SecurityEvent& ev) noexcept {
    std::string line;
    try {
      line = format_security_event(ev, options.format);
    } catch (...) {
      note_sink_error("cannot format an event");
      return;
    }
    each_sink([&](EventSink& s) { s.write(ev, line); });
    kinds[index_of(ev.kind)].emitted.fetch_add(1, std::memory_order_relaxed);
  }

  // One summary per kind that lost events since the last one.
  void summarize() noexcept {
    for (std::size_t i = 0; i < kSecurityEventKindCount; ++i) {
      const std::uint64_t s = kinds[i].suppressed.load(std::memory_order_relaxed);
      const std::uint64_t d = kinds[i].dropped.load(std::memory_order_relaxed);
      const std::uint64_t new_s = s - summarized_suppressed[i], new_d = d - summarized_dropped[i];
      if (new_s == 0 && new_d == 0) continue;
      summarized_suppressed[i] = s;
      summarized_dropped[i] = d;
      try {
        SecurityEvent ev;
        ev.time = std::chrono::system_clock::now();
        ev.kind = static_cast<SecurityEventKind>(i);
        ev.outcome = SecurityEventOutcome::unknown;
        ev.action = "events-suppressed";
        ev.reason = std::to_string(new_s) + " suppressed by the rate cap, " + std::to_string(new_d) +
                    " dropped (queue full)";
        ev.label("suppressed", std::to_string(new_s)).label("dropped", std::to_string(new_d));
        emit(ev);
      } catch (...) {
        note_sink_error("cannot build a summary event");
      }
    }
  }

  void run() noexcept {
    QueuedEvent ev;
    auto next_summary = steady::now() + options.summary_interval;
    std::uint64_t flushes_seen = 0;
    for (;;) {
      std::uint64_t flush_goal;
      {
        std::lock_guard lk(mu);
        flush_goal = flush_requests;
      }
      const bool flush_now = flush_goal != flushes_seen;
      const bool stopping_now = stopping.load(std::memory_order_acquire);
      if (reopen_requested.exchange(false)) each_sink([](EventSink& s) { s.reopen(); });

      // Everything with a ticket taken before a flush or stop request must be written: wait out
      // a producer that holds a ticket and is still filling its slot (a few instructions).
      const std::uint64_t target = flush_now || stopping_now ? ring.claimed() : 0;
      std::size_t n = 0;
      for (;;) {
        if (ring.try_pop(ev)) {
          dequeued.fetch_add(1, std::memory_order_relaxed);
          emit(ev.event);
          ev.event = SecurityEvent{};  // the slot keeps no old strings
          if (++n % kFlushEvery == 0) each_sink([](EventSink& s) { s.flush(); });
          continue;
        }
        if (ring.popped() < target) {
          std::this_thread::yield();
          continue;
        }
        break;
      }
      const auto now = steady::now();
      if (flush_now || stopping_now || now >= next_summary) {
        summarize();
        next_summary = now + options.summary_interval;
      }
      each_sink([](EventSink& s) { s.flush(); });
      if (flush_now) {
        std::lock_guard lk(mu);
        flushes_done = flushes_seen = flush_goal;
        done.notify_all();
      }
      if (stopping_now) break;

      std::unique_lock lk(mu);
      sleeping.store(true, std::memory_order_seq_cst);
      if (!ring.ready() && !stopping.load() && !reopen_requested.load() && flush_requests == flushes_seen) {
        const auto until_summary = std::chrono::duration_cast<std::chrono::milliseconds>(next_summary - now);
        wake.wait_for(lk, std::clamp(until_summary, std::chrono::milliseconds(1), kIdleWake));
      }
      sleeping.store(false, std::memory_order_relaxed);
    }
    std::lock_guard lk(mu);
    exited = true;
    done.notify_all();
  }

  SecurityEventsOptions options;
  detail::MpscRing<QueuedEvent> ring;
  std::array<KindState, kSecurityEventKindCount> kinds{};
  std::atomic<std::uint64_t> sink_errors{0};
  std::atomic<std::uint64_t> dequeued{0};  // written by the background thread, read by stats()
  std::uint64_t wake_threshold = 0;  // queued events beyond which a producer wakes the thread
  bool capped = false;
  std::int64_t interval_ns = 0, tolerance_ns = 0;

  // Background thread only.
  std::array<std::uint64_t, kSecurityEventKindCount> summarized_suppressed{}, summarized_dropped{};
  steady::time_point last_error_log{};

  std::atomic<bool> sleeping{false};
  std::atomic<bool> stopping{false};  // the thread should drain and end
  std::atomic<bool> stopped{false};   // reports are refused from now on
  std::atomic<bool> reopen_requested{false};
  std::mutex mu;
  std::condition_variable wake, done;
  std::uint64_t flush_requests = 0, flushes_done = 0;  // under mu
  bool exited = false;                                 // under mu
  std::mutex stop_mu;                                  // serializes stop()
  std::thread thread;
};

SecurityEvents::SecurityEvents(SecurityEventsOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

SecurityEvents::~SecurityEvents() { stop(); }

void SecurityEvents::report(SecurityEvent event) noexcept { impl_->report(event); }

bool SecurityEvents::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lk(impl_->mu);
  if (impl_->exited) return true;
  const std::uint64_t mine = ++impl_->flush_requests;
  impl_->wake.notify_one();
  return impl_->done.wait_for(lk, timeout, [&] { return impl_->flushes_done >= mine || impl_->exited; });
}

void SecurityEvents::reopen() noexcept {
  impl_->reopen_requested.store(true);
  std::lock_guard lk(impl_->mu);
  impl_->wake.notify_one();
}

void SecurityEvents::stop() {
  std::lock_guard stop_lock(impl_->stop_mu);
  if (!impl_->thread.joinable()) return;
  impl_->stopped.store(true, std::memory_order_release);
  {
    std::lock_guard lk(impl_->mu);
    impl_->stopping.store(true, std::memory_order_release);
    impl_->wake.notify_one();
  }
  impl_->thread.join();
}

SecurityEventsStats SecurityEvents::stats() const noexcept {
  SecurityEventsStats s;
  for (std::size_t i = 0; i < kSecurityEventKindCount; ++i) {
    const KindState& k = impl_->kinds[i];
    SecurityEventCounts& c = s.by_kind[i];
    c.reported = k.reported.load(std::memory_order_relaxed);
    c.emitted = k.emitted.load(std::memory_order_relaxed);
    c.dropped = k.dropped.load(std::memory_order_relaxed);
    c.suppressed = k.suppressed.load(std::memory_order_relaxed);
    s.total.reported += c.reported;
    s.total.emitted += c.emitted;
    s.total.dropped += c.dropped;
    s.total.suppressed += c.suppressed;
  }
  s.sink_errors = impl_->sink_errors.load(std::memory_order_relaxed);
  const std::uint64_t accepted = impl_->ring.claimed();
  const std::uint64_t taken = impl_->dequeued.load(std::memory_order_relaxed);
  s.queued = accepted > taken ? static_cast<std::size_t>(accepted - taken) : 0;
  return s;
}

const SecurityEventsOptions& SecurityEvents::options() const noexcept { return impl_->options; }

}  // namespace gatehouse
