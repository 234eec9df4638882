#include "observe/security_events_http.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <array>
#include <string>

#include <asio/error.hpp>
#include <asio/ssl/error.hpp>

#include "gatehouse/security_events.hpp"
#include "observe/gateway_metrics.hpp"
#include "tls/client_certificate.hpp"

namespace gatehouse::detail {
namespace {

// Reasons (ours and llhttp's) that mean the message framing was ambiguous or tampered with: the
// raw material of request smuggling and header injection.
bool smuggling_signal(std::string_view why) noexcept {
  constexpr std::array<std::string_view, 12> kSignals{
      "Content-Length",   "Transfer-Encoding", "chunk",          "whitespace in header name",
      "line folding",     "invalid character in header value", "Invalid header value char", "duplicate Host",
      "empty header name", "expected LF",      "Expected LF",    "expected CR"};
  for (std::string_view s : kSignals)
    if (why.find(s) != std::string_view::npos) return true;
  return false;
}

bool mentions(std::string_view why, std::string_view word) noexcept { return why.find(word) != std::string_view::npos; }

std::string_view action_for(unsigned status, std::string_view why) noexcept {
  if (smuggling_signal(why)) return "http-request-smuggling-suspected";
  if (mentions(why, "dot-segment")) return "http-path-traversal-suspected";
  switch (status) {
    case 408: return "http-request-timeout";
    case 413:
    case 414:
    case 431: return "http-limit-exceeded";
    case 400: return "http-request-malformed";
    default: return "http-request-rejected";
  }
}

}  // namespace

void report_refused_request(Exchange& ex, unsigned status, std::string_view why) {
  if (!ex.security_events()) return;
  SecurityEvent e;
  e.kind = SecurityEventKind::protocol_violation;
  e.outcome = SecurityEventOutcome::failure;
  e.action = action_for(status, why);
  e.reason = why.empty() ? (status == 408 ? "request not received in time" : "refused") : std::string(why);
  e.http_status = status;
  ex.report(std::move(e));
}

std::string_view violation_class(unsigned status, std::string_view why) noexcept {
  if (smuggling_signal(why)) return "smuggling";
  switch (status) {
    case 408: return "timeout";
    case 413:
    case 414:
    case 431: return "limit";
    default: break;
  }
  if (mentions(why, "path") || mentions(why, "fragment")) return "path";
  if (mentions(why, "Host") || mentions(why, "authority")) return "host";
  if (mentions(why, "target") || mentions(why, "asterisk") || mentions(why, "CONNECT")) return "target";
  if (mentions(why, "HTTP/0.9") || mentions(why, "version") || status == 505) return "version";
  return status == 400 ? "malformed" : "unsupported";
}

void note_refused_request(Exchange& ex, unsigned status, std::string_view why) {
  count_protocol_violation(ex, violation_class(status, why));
  if (ex.security_events()) report_refused_request(ex, status, why);
}

void report_tls_failure(SecurityEvents& events, const asio::ip::tcp::endpoint& peer, ssl_st* ssl,
                        const std::error_code& ec, bool timed_out, bool client_cert_required) {
  if (!timed_out && (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)) return;
  SecurityEvent e;
  e.kind = SecurityEventKind::tls_handshake_failure;
  e.outcome = SecurityEventOutcome::failure;
  e.peer = peer;
  e.client_ip = peer.address();
  e.reason = timed_out ? std::string("handshake not completed in time") : ec.message();
  if (ssl) {
    if (const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) e.label("sni", sni);
    if (client_cert_required) e.tls_client_subject = client_certificate_subject(ssl);
    const long verify = SSL_get_verify_result(ssl);
    const bool missing = client_cert_required && e.reason.find("certificate") != std::string::npos;
    if (verify != X509_V_OK || missing) {
      e.kind = SecurityEventKind::client_certificate_rejected;
      if (verify != X509_V_OK) {
        e.reason = X509_verify_cert_error_string(verify);
        e.label("verify_error", std::to_string(verify));
      }
    }
  }
  events.report(std::move(e));
}

void report_connection_refused(SecurityEvents& events, const asio::ip::tcp::endpoint& peer, bool per_client,
                               std::size_t limit, std::string_view listener) {
  try {
    SecurityEvent e;
    e.kind = SecurityEventKind::rate_limited;
    e.outcome = SecurityEventOutcome::failure;
    e.action = "connection-limit-exceeded";
    e.reason = per_client ? "client has " + std::to_string(limit) + " connections open on this listener"
                          : "listener has " + std::to_string(limit) + " connections open";
    e.peer = peer;
    e.client_ip = peer.address();
    e.rule_id = per_client ? "max_connections_per_client" : "max_connections";
    e.label("limit", std::to_string(limit));
    if (!listener.empty()) e.label("listener", std::string(listener));
    events.report(std::move(e));
  } catch (...) {
    // Out of memory: the connection was refused all the same, and counted.
  }
}

}  // namespace gatehouse::detail
