// How the library itself logs: to an object's own logger if it has one, else to the process-wide
// one; never throws, and skips the work when the level is off.
#pragma once
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "gatehouse/logger.hpp"

namespace gatehouse::detail {

/// `own` may be null (then the process-wide logger is used).
void log(const std::shared_ptr<Logger>& own, LogLevel level, std::string_view message,
         std::initializer_list<LogField> fields = {}) noexcept;

/// The logger `own` stands for: itself, or the process-wide one.
std::shared_ptr<Logger> logger_or_default(const std::shared_ptr<Logger>& own);

/// The line StderrLogger writes, newline included (for tests and other line-based sinks).
std::string format_log_line(LogLevel level, std::string_view message, std::span<const LogField> fields);

}  // namespace gatehouse::detail
