// RFC 5424 message framing, shared by SyslogEventSink and its tests.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace gatehouse::detail {

/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG` (RFC 5424 section 6), PRI =
/// facility * 8 + severity, TIMESTAMP in UTC with microseconds, no structured data. Header fields
/// are cut to their RFC lengths and keep only printable US-ASCII ("-" when empty). MSG is sent as
/// it is (our lines are ASCII JSON or CEF, so no BOM: RFC 5424 MSG-ANY).
std::string syslog_message(int facility, int severity, std::chrono::system_clock::time_point time,
                           std::string_view hostname, std::string_view app_name, std::string_view procid,
                           std::string_view msgid, std::string_view msg);

/// RFC 6587 section 3.4.1 octet counting: "<length> <message>".
std::string octet_counted(std::string_view message);

/// A syslog header field: printable US-ASCII (33..126) only, at most `max` bytes, "-" if empty.
std::string syslog_header_field(std::string_view s, std::size_t max);

}  // namespace gatehouse::detail
