// W3C Trace Context Level 1 (https://www.w3.org/TR/trace-context-1/): parsing traceparent and
// tracestate, and a listener's policy, which decides per request whether the caller's trace is
// continued or a new one starts, and rewrites both fields for the upstream.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gatehouse/exchange.hpp"
#include "gatehouse/trace_context.hpp"
#include "net/cidr.hpp"

namespace gatehouse::detail {

/// A valid traceparent.
struct TraceParent {
  std::uint8_t version = 0;
  char trace_id[32];   // lowercase hex, not all zero
  char parent_id[16];  // lowercase hex, not all zero
  std::uint8_t flags = 0;
};

/// Version 00: exactly "00-<32 hex>-<16 hex>-<2 hex>", lowercase hex only, ids not all zero.
/// Versions 01..fe (forward compatibility): the same first 55 characters, then the end or a '-'
/// and anything. Version ff is invalid. OWS around the value is ignored.
std::optional<TraceParent> parse_traceparent(std::string_view value) noexcept;

/// Most tracestate bytes forwarded; longer lists are cut as the specification says (members over
/// 128 characters first, then from the end).
inline constexpr std::size_t kMaxTracestateBytes = 512;
/// Most list members in a tracestate.
inline constexpr std::size_t kMaxTracestateMembers = 32;

/// The tracestate to forward, from every `tracestate` field of `headers` read as one list: its
/// members in order, joined by ",", without empty members or OWS, at most kMaxTracestateBytes.
/// False when the list is invalid (a member that is not key=value by the grammar, a duplicate
/// key, more than 32 members): then nothing is forwarded. `out` may be empty on success.
bool normalize_tracestate(const Headers& headers, std::string& out);

/// The gateway core's way to fill an exchange's TraceContext.
struct TraceAccess {
  /// A new trace: random trace id and span id, the given sampled flag.
  static void start(TraceContext& tc, bool sampled) noexcept;
  /// Continues `parent`: its trace id and flags (the sampled bit only), a new span id.
  static void continue_from(TraceContext& tc, const TraceParent& parent) noexcept;
  /// "00-<trace id>-<span id>-<flags>".
  static void write_traceparent(const TraceContext& tc, char (&out)[55]) noexcept;
  static void clear(TraceContext& tc) noexcept { tc = TraceContext{}; }
};

/// A listener's trace-context settings, resolved when the configuration snapshot is built.
class TracePolicy {
 public:
  /// Off: requests pass their trace fields through untouched.
  TracePolicy() = default;
  /// `trusted_proxies`: the sources when the options name none. Throws std::invalid_argument for
  /// a CIDR block that does not parse.
  TracePolicy(const TraceContextOptions& options, const CidrSet& trusted_proxies);

  bool enabled() const noexcept { return enabled_; }
  /// Decides for a request whose head has been read from `peer`: continues a valid traceparent
  /// the policy accepts, or starts a new trace; sets the exchange's TraceContext and replaces the
  /// request's traceparent (and tracestate: the caller's when continued and valid, else none).
  void apply(Exchange& ex) const;
  /// A new trace for a request refused before its head was complete (its fields are not read).
  void start_new(Exchange& ex) const noexcept;

 private:
  CidrSet sources_;
  TraceContinue continue_from_ = TraceContinue::never;
  bool sample_new_ = true;
  bool enabled_ = false;
};

}  // namespace gatehouse::detail
