// The security events the HTTP/1 session and the worker report themselves: requests refused before
// any middleware (malformed, ambiguous framing, bad path or Host, over a limit, too slow), failed TLS
// handshakes, and connections refused at accept.
// Called only when a SecurityEvents is configured; the session tests the pointer first.
#pragma once
#include <cstddef>
#include <string_view>
#include <system_error>

#include <asio/ip/tcp.hpp>

#include "gatehouse/exchange.hpp"

struct ssl_st;

namespace gatehouse::detail {

/// A protocol_violation for a request the session answered with `status` (400, 405, 408, 413,
/// 414, 417, 431, 501, 505) because of `why`. Framing ambiguities (Content-Length with
/// Transfer-Encoding, duplicate or invalid lengths, bad chunks, whitespace before a colon, line
/// folding) get the action "http-request-smuggling-suspected".
void report_refused_request(Exchange& ex, unsigned status, std::string_view why);

/// The class of a refusal, a bounded label for gatehouse_protocol_violations_total: "smuggling",
/// "path", "host", "target", "version", "limit", "timeout", "malformed" or "unsupported".
std::string_view violation_class(unsigned status, std::string_view why) noexcept;

/// A refused request: counted in gatehouse_protocol_violations_total and, when events are
/// configured, reported as a protocol_violation.
void note_refused_request(Exchange& ex, unsigned status, std::string_view why);

/// A server-side TLS handshake that failed with `ec` (or timed out): client_certificate_rejected
/// when the client's certificate failed verification or was missing on an mTLS listener,
/// tls_handshake_failure otherwise. A peer that closed before saying anything is not reported.
void report_tls_failure(SecurityEvents& events, const asio::ip::tcp::endpoint& peer, ssl_st* ssl,
                        const std::error_code& ec, bool timed_out, bool client_cert_required);

/// A connection closed right after accept because its listener had `limit` connections open
/// (max_connections) or its client did (`per_client`: max_connections_per_client): a rate_limited
/// event, action "connection-limit-exceeded", label "limit" naming the option.
void report_connection_refused(SecurityEvents& events, const asio::ip::tcp::endpoint& peer, bool per_client,
                               std::size_t limit, std::string_view listener);

}  // namespace gatehouse::detail
