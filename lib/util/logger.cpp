#include "gatehouse/logger.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>

#include "util/log.hpp"

namespace gatehouse {
namespace {

// Never destroyed: background threads may still log while static objects are torn down at exit.
std::atomic<std::shared_ptr<Logger>>& installed() {
  static auto* current = new std::atomic<std::shared_ptr<Logger>>(std::make_shared<StderrLogger>());
  return *current;
}

void append_escaped(std::string& out, std::string_view text, bool in_quotes) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else if (in_quotes && (c == '"' || c == '\\')) {
      out += '\\';
      out += ch;
    } else {
      out += ch;
    }
  }
}

// Bare when unambiguous, else quoted: a value never runs into the next key=value.
bool needs_quotes(std::string_view v) noexcept {
  return v.empty() || v.find_first_of(" \"=\\") != std::string_view::npos;
}

}  // namespace

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
  }
  return "unknown";
}

void StderrLogger::log(LogLevel level, std::string_view message, std::span<const LogField> fields) {
  if (!enabled(level)) return;
  try {
    const std::string line = detail::format_log_line(level, message, fields);
    // One write, so that lines from several threads do not interleave; EINTR is the only retry, so a
    // slow terminal holds the caller for one write at most.
    while (::write(STDERR_FILENO, line.data(), line.size()) < 0 && errno == EINTR) {
    }
  } catch (...) {
    // Out of memory for the line: nothing sensible is left to do with the message.
  }
}

std::shared_ptr<Logger> logger() { return installed().load(); }

void set_logger(std::shared_ptr<Logger> l) {
  if (!l) l = std::make_shared<StderrLogger>();
  installed().store(std::move(l));
}

std::shared_ptr<Logger> null_logger() {
  static const auto* null = new std::shared_ptr<Logger>(std::make_shared<NullLogger>());
  return *null;
}

namespace detail {

std::string format_log_line(LogLevel level, std::string_view message, std::span<const LogField> fields) {
  std::string line;
  line.reserve(32 + message.size() + fields.size() * 24);
  line += "gatehouse: ";
  line += to_string(level);
  line += ": ";
  append_escaped(line, message, false);
  for (const LogField& f : fields) {
    line += ' ';
    append_escaped(line, f.key, false);
    line += '=';
    if (needs_quotes(f.value)) {
      line += '"';
      append_escaped(line, f.value, true);
      line += '"';
    } else {
      append_escaped(line, f.value, false);
    }
  }
  line += '\n';
  return line;
}

std::shared_ptr<Logger> logger_or_default(const std::shared_ptr<Logger>& own) { return own ? own : logger(); }

void log(const std::shared_ptr<Logger>& own, LogLevel level, std::string_view message,
         std::initializer_list<LogField> fields) noexcept {
  try {
    const std::shared_ptr<Logger> l = logger_or_default(own);
    if (l->enabled(level)) l->log(level, message, std::span<const LogField>(fields.begin(), fields.size()));
  } catch (...) {
    // A throwing logger must not take down what was being reported on (a key refresh, a request).
  }
}

}  // namespace detail
}  // namespace gatehouse
