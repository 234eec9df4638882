#include "gatehouse/middleware/access_log.hpp"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdio>
#include <ctime>
#include <string_view>
#include <system_error>
#include <thread>

#include "core/chain.hpp"
#include "util/mpsc_ring.hpp"

namespace gatehouse {
namespace {

using namespace std::chrono_literals;

// The writer polls this often while lines keep coming, so busy workers never pay for a wake-up
// call; after kIdlePolls empty polls it blocks until a worker (or flush, or shutdown) wakes it.
constexpr auto kPollInterval = 1ms;
constexpr unsigned kIdlePolls = 20;

template <class Int>
void append_int(std::string& out, Int v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

void append_field(std::string& out, std::string_view key, std::string_view value) {
  out += ",\"";
  out += key;
  out += "\":\"";
  detail::append_json_escaped(out, value);
  out += '"';
}

// RFC 3339 UTC with milliseconds. gmtime_r runs once per second per thread: the text of the
// current second is cached.
void append_time(std::string& out, std::chrono::system_clock::time_point now) {
  struct Cache {
    long long second = LLONG_MIN;
    char text[32] = {};
    std::size_t size = 0;
  };
  thread_local Cache cache;
  const long long ms_total = std::chrono::floor<std::chrono::milliseconds>(now.time_since_epoch()).count();
  long long second = ms_total / 1000;
  long long ms = ms_total % 1000;
  if (ms < 0) ms += 1000, second -= 1;
  if (second != cache.second) {
    const std::time_t t = static_cast<std::time_t>(second);
    std::tm tm{};
    gmtime_r(&t, &tm);
    const int n = std::snprintf(cache.text, sizeof(cache.text), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cache.size = n > 0 ? static_cast<std::size_t>(n) : 0;
    cache.second = second;
  }
  out.append(cache.text, cache.size);
  const char frac[5] = {'.', static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                        static_cast<char>('0' + ms % 10), 'Z'};
  out.append(frac, sizeof(frac));
}

// Milliseconds with three decimals, from integer microseconds (no floating point formatting).
void append_duration_ms(std::string& out, Exchange::clock::duration d) {
  long long us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  if (us < 0) us = 0;
  append_int(out, us / 1000);
  const long long frac = us % 1000;
  const char digits[4] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                          static_cast<char>('0' + frac % 10)};
  out.append(digits, sizeof(digits));
}

void format_line(std::string& out, const Exchange& ex, std::error_code ec) {
  out += "{\"time\":\"";
  append_time(out, std::chrono::system_clock::now());
  out += '"';
  append_field(out, "request_id", ex.request_id());
  if (!ex.trace_id().empty()) append_field(out, "trace_id", ex.trace_id());
  append_field(out, "client", ex.client_address().to_string());
  append_field(out, "method", ex.request().method());
  append_field(out, "path", ex.request().path());  // no query: it often carries tokens
  append_field(out, "route", ex.route_name());
  append_field(out, "upstream", ex.upstream_endpoint());
  out += ",\"status\":";
  append_int(out, ex.response().status());
  out += ",\"bytes_in\":";
  append_int(out, ex.bytes_received());
  out += ",\"bytes_out\":";
  append_int(out, ex.bytes_sent());
  out += ",\"duration_ms\":";
  append_duration_ms(out, Exchange::clock::now() - ex.start_time());
  if (ec) append_field(out, "error", ec.message());
  out += "}\n";
}

}  // namespace

struct AccessLog::Impl {
  explicit Impl(const AccessLogOptions& options) : ring(options.queue_capacity) {
    if (options.path == "-") {
      out = stdout;
    } else {
      out = std::fopen(options.path.c_str(), "ae");  // append, close-on-exec
      if (!out) throw std::system_error(errno, std::generic_category(), "access log " + options.path);
      owns_out = true;
    }
    try {
      writer = std::thread([this] { run(); });
    } catch (...) {
      if (owns_out) std::fclose(out);
      throw;
    }
  }

  ~Impl() {
    stopping.store(true, std::memory_order_release);
    wake();
    writer.join();
    if (owns_out) std::fclose(out);
  }

  // Worker threads. Never blocks: a full queue drops the line.
  void push(std::string& line) noexcept {
    if (!ring.try_push(line)) {
      dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // Dekker handshake, all seq_cst: we took a ticket, then read `sleeping`; the writer sets
    // `sleeping`, then reads claimed(). Either we see it asleep and wake it, or it sees our ticket
    // and stays up. While the writer is awake this costs a plain load, no system call.
    if (sleeping.load(std::memory_order_seq_cst)) wake();
  }

  void wake() noexcept {
    wakeups.fetch_add(1, std::memory_order_release);
    wakeups.notify_one();
  }

  void flush() {
    const std::uint64_t target = ring.claimed();
    for (;;) {
      const std::uint64_t done = flushed.load(std::memory_order_acquire);
      if (done >= target) return;
      wake();
      flushed.wait(done, std::memory_order_acquire);
    }
  }

  // The writer thread.
  void run() {
    std::string line;
    unsigned idle = 0;
    for (;;) {
      bool any = false;
      while (ring.try_pop(line)) {
        std::fwrite(line.data(), 1, line.size(), out);
        line.clear();  // keeps its capacity: the next push swaps it back to a worker
        written.store(ring.popped(), std::memory_order_relaxed);
        any = true;
      }
      if (ring.popped() != flushed.load(std::memory_order_relaxed)) {
        std::fflush(out);
        flushed.store(ring.popped(), std::memory_order_release);
        flushed.notify_all();
      }
      if (any) {
        idle = 0;
        continue;
      }
      if (stopping.load(std::memory_order_acquire)) {
        if (ring.claimed() == ring.popped()) return;
        std::this_thread::yield();  // a worker took a ticket and is about to fill it
        continue;
      }
      if (idle < kIdlePolls) {
        ++idle;
        std::this_thread::sleep_for(kPollInterval);
        continue;
      }
      const std::uint32_t seen = wakeups.load(std::memory_order_acquire);
      sleeping.store(true, std::memory_order_seq_cst);
      // A ticket beyond popped() means a line is ready or its worker is about to publish it.
      if (ring.claimed() == ring.popped() && !stopping.load(std::memory_order_relaxed)) {
        wakeups.wait(seen, std::memory_order_acquire);
      }
      sleeping.store(false, std::memory_order_relaxed);
      idle = 0;
    }
  }

  detail::MpscRing<std::string> ring;
  std::FILE* out = nullptr;
  bool owns_out = false;
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> written{0};
  std::atomic<std::uint64_t> flushed{0};  // lines written and handed to the OS
  std::atomic<bool> stopping{false};
  std::atomic<bool> sleeping{false};
  std::atomic<std::uint32_t> wakeups{0};
  std::thread writer;  // last: starts once everything above exists
};

AccessLog::AccessLog(AccessLogOptions options) : impl_(std::make_unique<Impl>(options)) {}

AccessLog::~AccessLog() = default;

void AccessLog::on_complete(Exchange& ex, std::error_code ec) const noexcept {
  // One buffer per worker thread, swapped with the ring's spent buffers: no allocation per line
  // once the buffers have grown to a typical line.
  thread_local std::string line;
  try {
    line.clear();
    line.reserve(256);
    format_line(line, ex, ec);
  } catch (...) {
    impl_->dropped.fetch_add(1, std::memory_order_relaxed);  // out of memory: lose the line, not the worker
    return;
  }
  impl_->push(line);
}

AccessLogStats AccessLog::stats() const noexcept {
  return {impl_->written.load(std::memory_order_relaxed), impl_->dropped.load(std::memory_order_relaxed)};
}
void AccessLog::flush() const { impl_->flush(); }

}  // namespace gatehouse
