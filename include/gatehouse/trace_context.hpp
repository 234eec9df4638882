// W3C Trace Context (traceparent, tracestate): how the gateway continues or starts a trace for each
// request, and what an exchange knows about its trace. docs/observability.md, "Trace context".
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse {

namespace detail {
struct TraceAccess;
}

/// Whose incoming `traceparent` the gateway continues (the others get a new trace).
enum class TraceContinue : unsigned char {
  all,      ///< every client's
  trusted,  ///< only from TraceContextOptions::trusted_sources (the TCP peer's address)
  never,    ///< no one's: every request starts a new trace at the gateway
};

struct TraceContextOptions {
  /// false: the gateway neither reads nor writes traceparent/tracestate (they pass through as any
  /// header) and exchanges have no trace id.
  bool enabled = true;
  TraceContinue continue_from = TraceContinue::trusted;
  /// CIDR blocks ("10.0.0.0/8", "::1") whose traceparent is continued with `trusted`. Empty: the
  /// gateway's trusted_proxies.
  std::vector<std::string> trusted_sources{};
  /// The sampled flag of traces the gateway starts (a continued trace keeps the caller's).
  bool sample_new = true;
};

/// The trace of one exchange (Exchange::trace()). Ids are lowercase hex; all empty when trace
/// context is off.
class TraceContext {
 public:
  /// True when the gateway handled trace context for this exchange.
  bool active() const noexcept { return active_; }
  /// 32 hex digits: the caller's trace id (continued) or a new one.
  std::string_view trace_id() const noexcept { return active_ ? std::string_view(trace_id_, 32) : std::string_view(); }
  /// 16 hex digits: the gateway's own span, sent upstream as the parent-id.
  std::string_view span_id() const noexcept { return active_ ? std::string_view(span_id_, 16) : std::string_view(); }
  /// 16 hex digits: the caller's span (its traceparent's parent-id); empty for a new trace.
  std::string_view parent_id() const noexcept {
    return continued_ ? std::string_view(parent_id_, 16) : std::string_view();
  }
  bool sampled() const noexcept { return (flags_ & 1) != 0; }
  /// True when the caller's traceparent was valid and continued.
  bool continued() const noexcept { return continued_; }
  /// The traceparent sent upstream ("00-<trace id>-<span id>-<flags>", 55 characters); empty when
  /// not active.
  std::string traceparent() const;

 private:
  friend struct detail::TraceAccess;
  char trace_id_[32] = {};
  char span_id_[16] = {};
  char parent_id_[16] = {};
  std::uint8_t flags_ = 0;
  bool active_ = false;
  bool continued_ = false;
};

}  // namespace gatehouse
