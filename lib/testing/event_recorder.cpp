// testing::EventRecorder: a SecurityEvents whose only sink keeps every event in memory.

#include <mutex>

#include "core/exchange_access.hpp"
#include "gatehouse/testing.hpp"

namespace gatehouse::testing {

class EventRecorder::Sink final : public EventSink {
 public:
  void write(const SecurityEvent& event, std::string_view line) override {
    std::lock_guard lk(mu_);
    events_.push_back(event);
    lines_.emplace_back(line);
  }
  std::vector<SecurityEvent> events() const {
    std::lock_guard lk(mu_);
    return events_;
  }
  std::vector<std::string> lines() const {
    std::lock_guard lk(mu_);
    return lines_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<SecurityEvent> events_;
  std::vector<std::string> lines_;
};

EventRecorder::EventRecorder()
    : sink_(std::make_shared<Sink>()),
      events_(std::make_shared<SecurityEvents>(
          SecurityEventsOptions{.sinks = {sink_}, .queue_size = 4096, .rate_limit_per_kind = {.per_second = 0}})) {}

void EventRecorder::attach(Exchange& ex) const noexcept {
  detail::ExchangeAccess::set_security_events(ex, events_.get());
}

std::vector<SecurityEvent> EventRecorder::events() const {
  events_->flush();
  return sink_->events();
}

std::vector<std::string> EventRecorder::lines() const {
  events_->flush();
  return sink_->lines();
}

}  // namespace gatehouse::testing
