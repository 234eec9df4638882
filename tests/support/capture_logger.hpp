// A Logger that keeps what it receives, for tests that check what the library reports.
#pragma once
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gatehouse/logger.hpp"

namespace gatehouse::test {

class CaptureLogger final : public Logger {
 public:
  struct Entry {
    LogLevel level;
    std::string message;
    std::vector<std::pair<std::string, std::string>> fields;
    /// The value of field `key`, "" when absent.
    std::string field(std::string_view key) const {
      for (const auto& [k, v] : fields)
        if (k == key) return v;
      return {};
    }
  };

  CaptureLogger() = default;
  /// Also appends each message to `*lines` (under the logger's lock).
  explicit CaptureLogger(std::vector<std::string>* lines) : lines_(lines) {}

  void log(LogLevel level, std::string_view message, std::span<const LogField> fields) override {
    Entry e{level, std::string(message), {}};
    for (const LogField& f : fields) e.fields.emplace_back(f.key, f.value);
    std::lock_guard lock(mutex_);
    if (lines_) lines_->emplace_back(message);
    entries_.push_back(std::move(e));
  }

  std::vector<Entry> entries() const {
    std::lock_guard lock(mutex_);
    return entries_;
  }
  std::vector<std::string> messages() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& e : entries_) out.push_back(e.message);
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
  std::vector<std::string>* lines_ = nullptr;
};

}  // namespace gatehouse::test
