#include "gatehouse/middleware/client_identity_headers.hpp"

#include <array>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "gatehouse/client_identity.hpp"
#include "http1/token.hpp"
#include "util/text.hpp"

namespace gatehouse {
namespace {

// Headers that frame or route the message: an identity header must never be one of them.
constexpr std::array<std::string_view, 11> kReserved{
    "host",    "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
    "trailer", "proxy-connection", "expect", "authorization"};

bool header_safe(std::string_view v) noexcept { return !detail::has_control(v); }

void append_sans(std::string& out, std::string_view tag, const std::vector<std::string>& names) {
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += tag;
    out += n;
  }
}

}  // namespace

ClientIdentityHeaders::ClientIdentityHeaders(ClientIdentityHeadersOptions options) : options_(std::move(options)) {
  std::array<std::string*, 3> names{&options_.spiffe_id, &options_.subject, &options_.sans};
  bool any = false;
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::string& n = *names[i];
    if (n.empty()) continue;
    any = true;
    n = detail::to_lower_ascii(n);
    if (!detail::is_http_token(n))
      throw std::invalid_argument("ClientIdentityHeaders: invalid header name \"" + detail::without_controls(n) + "\"");
    for (std::string_view r : kReserved)
      if (n == r) throw std::invalid_argument("ClientIdentityHeaders: \"" + n + "\" cannot carry an identity");
    for (std::size_t k = 0; k < i; ++k)
      if (*names[k] == n) throw std::invalid_argument("ClientIdentityHeaders: header \"" + n + "\" named twice");
  }
  if (!any) throw std::invalid_argument("ClientIdentityHeaders: no header to send");
}

Flow ClientIdentityHeaders::on_request(Exchange& ex) const {
  Headers& h = ex.request().headers();
  // Whatever the client sent under these names goes, certificate or not.
  for (const std::string* n : {&options_.spiffe_id, &options_.subject, &options_.sans})
    if (!n->empty()) h.remove(*n);
  const ClientIdentity* id = ex.client_identity();
  if (!id) return Flow::next();
  if (!options_.spiffe_id.empty() && !id->spiffe_id.empty()) h.set(options_.spiffe_id, id->spiffe_id);
  if (!options_.subject.empty() && !id->subject.empty() && header_safe(id->subject)) h.set(options_.subject, id->subject);
  if (!options_.sans.empty()) {
    std::string sans;
    append_sans(sans, "DNS:", id->dns_names);
    append_sans(sans, "URI:", id->uris);
    append_sans(sans, "email:", id->emails);
    append_sans(sans, "IP:", id->ips);
    if (!sans.empty() && header_safe(sans)) h.set(options_.sans, sans);
  }
  return Flow::next();
}

}  // namespace gatehouse
