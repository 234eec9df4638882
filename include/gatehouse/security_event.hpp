// SecurityEvent: one security decision worth telling a SIEM about (a refused credential, a denied
// request, a protocol violation, a failed TLS handshake, a configuration reload...), and its two
// wire formats: ECS JSON lines (Elastic Common Schema) and CEF. docs/observability.md lists every
// field with its ECS and CEF name.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>

namespace gatehouse {

/// What happened. New kinds are added at the end (the counters are indexed by kind).
enum class SecurityEventKind : unsigned char {
  authentication_failure,       ///< a credential was missing, refused or could not be checked
  authorization_denied,         ///< an authenticated caller lacks a scope or claim
  rate_limited,                 ///< a request over a rate limit
  ip_filtered,                  ///< a request refused by an address filter
  waf_match,                    ///< a request matched a threat-protection rule
  ban,                          ///< a client was banned
  unban,                        ///< a ban was lifted
  protocol_violation,           ///< malformed or ambiguous request, smuggling attempt, limit exceeded
  tls_handshake_failure,        ///< a client's TLS handshake failed
  client_certificate_rejected,  ///< a client certificate failed verification (mTLS)
  config_reload,                ///< the configuration was reloaded (success) or the reload refused
};
/// Number of kinds (the size of per-kind tables).
inline constexpr std::size_t kSecurityEventKindCount = 11;

/// "authentication_failure", "authorization_denied", ... (the enumerator's name).
std::string_view to_string(SecurityEventKind kind) noexcept;
/// The kind named `name`, if any.
std::optional<SecurityEventKind> security_event_kind(std::string_view name) noexcept;

/// ECS event.outcome.
enum class SecurityEventOutcome : unsigned char { failure, success, unknown };
/// "failure", "success", "unknown".
std::string_view to_string(SecurityEventOutcome outcome) noexcept;

/// A kind-specific detail: ECS `labels.<key>`, CEF `cs5` ("key=value;..."). Keys are lowercase
/// words ([a-z0-9_], other bytes become '_').
struct SecurityEventField {
  std::string key;
  std::string value;
};

/// One event. Every field but `kind` is optional; Exchange::report fills the request's own
/// facts (route, request id, trace id, addresses, method, path, user). Never put a token, a password or a
/// key in an event: events leave the process. Strings are cut to a bounded length when reported
/// (reason and path 1024 bytes, other fields 256, at most 16 labels), so a queued event has a
/// bounded size.
struct SecurityEvent {
  /// When it happened; the epoch (the default) means "now, when reported".
  std::chrono::system_clock::time_point time{};
  SecurityEventKind kind = SecurityEventKind::protocol_violation;
  SecurityEventOutcome outcome = SecurityEventOutcome::failure;
  /// ECS event.action; empty: the kind's name with dashes ("authentication-failure").
  std::string action{};
  /// ECS event.reason: why, in a few words ("token expired", "CL and TE both present").
  std::string reason{};
  /// The client: the TCP peer, or the address a trusted proxy reported (ECS client.ip).
  std::optional<asio::ip::address> client_ip{};
  /// The TCP peer (ECS source.ip and source.port): the client itself or a trusted proxy.
  std::optional<asio::ip::tcp::endpoint> peer{};
  std::string route{};       ///< route name (labels.route)
  std::string request_id{};  ///< http.request.id
  std::string trace_id{};    ///< trace.id (W3C trace id, 32 hex digits)
  std::string http_method{}; ///< http.request.method
  std::string url_path{};    ///< url.path (without the query: it may hold credentials)
  unsigned http_status = 0;  ///< http.response.status_code of the answer, 0: none
  std::string user_name{};   ///< user.name (the token's subject), when known
  /// tls.client.subject: the distinguished name of the client certificate (mTLS), RFC 4514 form
  std::string tls_client_subject{};
  std::string rule_id{};     ///< rule.id: which rule decided (a scope, a WAF rule id, a limit name)
  std::string rule_name{};   ///< rule.name
  std::vector<SecurityEventField> labels{};  ///< kind-specific details

  /// Adds a label (chainable): `event.label("verifier", "jwt").label("key_id", kid)`.
  SecurityEvent& label(std::string key, std::string value) {
    labels.push_back({std::move(key), std::move(value)});
    return *this;
  }
};

/// The line format of SecurityEvents' sinks.
enum class SecurityEventFormat : unsigned char { ecs, cef };

/// The event as one ECS JSON object (no newline): nested objects (`{"event":{"kind":...}}`),
/// pure ASCII (other characters are \u-escaped, invalid UTF-8 replaced), ecs.version 8.11.0,
/// service.name "gatehouse".
std::string format_ecs(const SecurityEvent& event);
/// The event as one CEF:0 line (no newline), header and extension escaped as the CEF spec says.
std::string format_cef(const SecurityEvent& event);
/// format_ecs or format_cef.
std::string format_security_event(const SecurityEvent& event, SecurityEventFormat format);

}  // namespace gatehouse
