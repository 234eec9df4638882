// AccessLog: one JSON line per request, written off the worker threads.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "gatehouse/middleware.hpp"

namespace gatehouse {

struct AccessLogOptions {
  /// File to append to; "-" for standard output.
  std::string path = "-";
  /// Lines waiting for the writer thread; past this, lines are dropped and counted, never blocking
  /// a worker.
  std::size_t queue_capacity = 16'384;
};

struct AccessLogStats {
  std::uint64_t written = 0;  ///< lines written so far
  std::uint64_t dropped = 0;  ///< lines dropped because the queue was full
};

/// Each line: {"time":"2026-11-27T10:00:00.123Z","request_id":..,"trace_id":..,"client":..,
/// "method":..,"path":..,"route":..,"upstream":..,"status":..,"bytes_in":..,"bytes_out":..,
/// "duration_ms":..} plus "error" when the exchange failed. "trace_id" (the W3C trace id) is
/// there when trace context is on. Strings are JSON-escaped; control bytes never reach the
/// log raw.
class AccessLog final : public Middleware {
 public:
  explicit AccessLog(AccessLogOptions options = {});
  ~AccessLog() override;  // writes what is queued, then stops the writer thread
  void on_complete(Exchange& ex, std::error_code ec) const noexcept override;

  AccessLogStats stats() const noexcept;
  /// Blocks until every line queued so far is written (for tests and shutdown).
  void flush() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace gatehouse
