// ClientIdentityHeaders: tells the upstream who the client is according to its verified
// certificate (downstream mTLS), in headers that a client cannot forge.
#pragma once
#include <string>

#include "gatehouse/middleware.hpp"

namespace gatehouse {

/// Header names; empty: that header is not sent. Names are lower-cased.
struct ClientIdentityHeadersOptions {
  std::string spiffe_id = "x-client-spiffe-id";  ///< the SPIFFE ID
  std::string subject{};  ///< the subject DN (RFC 2253)
  /// Every SAN, "DNS:a.example, URI:spiffe://corp/x, email:ops@corp, IP:10.0.0.1".
  std::string sans{};
};

/// Every incoming field with one of these names is removed first, on every request (with or
/// without a certificate), so the upstream can trust what it finds there. Put it in the global
/// chain so that no route forwards a client's copy.
class ClientIdentityHeaders final : public Middleware {
 public:
  /// Throws std::invalid_argument for a header name that is not a token, a hop-by-hop or framing
  /// header, the same name twice, or no header at all.
  explicit ClientIdentityHeaders(ClientIdentityHeadersOptions options);
  Flow on_request(Exchange& ex) const override;
  const ClientIdentityHeadersOptions& options() const noexcept { return options_; }

 private:
  ClientIdentityHeadersOptions options_;
};

}  // namespace gatehouse
