// What each security event kind means in ECS, CEF and syslog terms: one table, used by the two
// formats and by the syslog sink. docs/observability.md shows the same table.
#pragma once
#include <chrono>
#include <string>
#include <string_view>

#include "gatehouse/security_event.hpp"

namespace gatehouse::detail {

struct SecurityEventTraits {
  std::string_view name;         ///< "authentication_failure"
  std::string_view title;        ///< "Authentication failure" (CEF Name, ECS message)
  std::string_view ecs_kind;     ///< event.kind: "event" or "alert"
  std::string_view categories;   ///< event.category, comma-separated
  std::string_view types;        ///< event.type, comma-separated
  int cef_severity;              ///< 0..10
};

const SecurityEventTraits& traits(SecurityEventKind kind) noexcept;

/// RFC 5424 severity: 4 (warning) for failures and alerts, 5 (notice) otherwise.
int syslog_severity(const SecurityEvent& event) noexcept;

/// Cuts the event's strings to their bounds (reason and path 1024 bytes, others 256, 16 labels
/// with 64-byte keys), on a UTF-8 character boundary.
void bound_event(SecurityEvent& event) noexcept;

/// event.action: the event's own, or the kind's name with dashes.
std::string default_action(SecurityEventKind kind);

/// RFC 3339 in UTC with `fraction_digits` (3 or 6) digits: "2026-12-07T05:30:33.123Z".
std::string rfc3339_utc(std::chrono::system_clock::time_point t, int fraction_digits);

}  // namespace gatehouse::detail
