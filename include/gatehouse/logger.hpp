// Logger: where the library's own messages go (key refreshes, refused credentials, background
// errors). One process-wide logger, replaceable by the application; objects that report per event
// also take their own. The access log is separate: it is data, not diagnostics.
#pragma once
#include <memory>
#include <span>
#include <string_view>

namespace gatehouse {

enum class LogLevel : unsigned char { debug, info, warning, error };

/// "debug", "info", "warning", "error".
std::string_view to_string(LogLevel level) noexcept;

/// One structured detail of a message, e.g. {"request_id", "5f2c..."}.
struct LogField {
  std::string_view key;
  std::string_view value;
};

/// Receives the library's messages. Called from any thread, worker threads included, often at
/// once: implementations must be thread-safe and quick, and should not throw (an exception is
/// caught and the message dropped). The texts live only for the call. Client-controlled text in
/// them has been made printable (no control bytes) already.
class Logger {
 public:
  virtual ~Logger() = default;
  virtual void log(LogLevel level, std::string_view message, std::span<const LogField> fields) = 0;
  /// False: messages of `level` are not even built. Default: every level is wanted.
  virtual bool enabled(LogLevel level) const noexcept {
    (void)level;
    return true;
  }
};

/// The default: one line per message on standard error,
///   gatehouse: <level>: <message> key=value key="value with spaces" ...
/// written with a single write(2), so lines from several threads never mix and a slow terminal
/// holds a thread for one write at most. Control bytes are escaped. Never throws.
class StderrLogger final : public Logger {
 public:
  explicit StderrLogger(LogLevel min_level = LogLevel::info) noexcept : min_level_(min_level) {}
  void log(LogLevel level, std::string_view message, std::span<const LogField> fields) override;
  bool enabled(LogLevel level) const noexcept override { return level >= min_level_; }

 private:
  LogLevel min_level_;
};

/// Drops everything.
class NullLogger final : public Logger {
 public:
  void log(LogLevel, std::string_view, std::span<const LogField>) override {}
  bool enabled(LogLevel) const noexcept override { return false; }
};

/// The process-wide logger, used by every object that has no logger of its own. Never null.
std::shared_ptr<Logger> logger();
/// Replaces the process-wide logger (nullptr: back to the default StderrLogger). Thread-safe; takes
/// effect at the next message, also for objects created before.
void set_logger(std::shared_ptr<Logger> logger);
/// A shared NullLogger, e.g. `options.logger = gatehouse::null_logger();` to quiet one object.
std::shared_ptr<Logger> null_logger();

}  // namespace gatehouse
