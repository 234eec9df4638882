// Exchange::report: a security event about one request, completed with what the exchange knows.
// Kept here, beside SecurityEvents, so that the core does not depend on the event formats.

#include "gatehouse/auth/claims.hpp"
#include "gatehouse/client_identity.hpp"
#include "gatehouse/exchange.hpp"
#include "gatehouse/security_events.hpp"

namespace gatehouse {

void Exchange::report(SecurityEvent event) {
  if (!security_events_) return;
  try {
    if (event.route.empty()) event.route = route_name_;
    if (event.request_id.empty()) event.request_id = request_id_;
    if (event.trace_id.empty()) event.trace_id = trace_.trace_id();
    if (event.tls_client_subject.empty() && client_identity_) event.tls_client_subject = client_identity_->subject;
    if (!event.client_ip) event.client_ip = client_address_;
    if (!event.peer) event.peer = peer_;
    if (event.http_method.empty()) event.http_method = request_.method();
    if (event.url_path.empty()) event.url_path = request_.path();
    if (event.user_name.empty()) {
      if (const auto* claims = find<auth::Claims>()) {
        if (auto sub = claims->subject()) event.user_name = *sub;
      }
      // A caller known by its certificate: its SPIFFE ID, else its subject.
      if (event.user_name.empty() && client_identity_)
        event.user_name = client_identity_->spiffe_id.empty() ? client_identity_->subject : client_identity_->spiffe_id;
    }
  } catch (...) {
    return;  // out of memory: the event is lost, the request goes on
  }
  security_events_->report(std::move(event));
}

}  // namespace gatehouse
