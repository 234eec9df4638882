// HTTP status codes the gateway produces or forwards, with their reason phrases.
#pragma once
#include <cstdint>
#include <string_view>

namespace gatehouse {

enum class Status : std::uint16_t {
  continue_ = 100,
  ok = 200,
  created = 201,
  no_content = 204,
  moved_permanently = 301,
  found = 302,
  not_modified = 304,
  bad_request = 400,
  unauthorized = 401,
  forbidden = 403,
  not_found = 404,
  method_not_allowed = 405,
  request_timeout = 408,
  payload_too_large = 413,
  uri_too_long = 414,
  expectation_failed = 417,
  too_many_requests = 429,
  request_header_fields_too_large = 431,
  internal_server_error = 500,
  not_implemented = 501,
  bad_gateway = 502,
  service_unavailable = 503,
  gateway_timeout = 504,
  http_version_not_supported = 505,
};

/// A numeric status compares with a named one: `response.status() == Status::ok`.
constexpr bool operator==(unsigned code, Status s) noexcept { return code == static_cast<unsigned>(s); }

/// Reason phrase for a status code ("Not Found"); "Unknown" for codes we do not name.
std::string_view reason_phrase(unsigned code) noexcept;
inline std::string_view reason_phrase(Status s) noexcept { return reason_phrase(static_cast<unsigned>(s)); }

}  // namespace gatehouse
