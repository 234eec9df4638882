// ClientIdentity: who a client is according to its verified certificate (downstream mTLS).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse {

/// Read once per connection from the client certificate the listener verified (ServerTls::
/// client_ca_file), and seen by every request on that connection through
/// Exchange::client_identity(). Authorization rules can require it (Rule::spiffe_id,
/// Rule::principal) as they require token claims.
struct ClientIdentity {
  std::string subject{};  ///< subject DN, RFC 2253 form: "CN=billing,O=corp"
  std::string issuer{};   ///< issuer DN, same form
  std::string serial{};   ///< serial number, upper-case hex
  std::vector<std::string> dns_names{};  ///< DNS SANs
  std::vector<std::string> uris{};       ///< URI SANs
  std::vector<std::string> emails{};     ///< email (rfc822Name) SANs
  std::vector<std::string> ips{};        ///< IP address SANs, in text form
  /// The SPIFFE ID: the certificate's URI SAN when it is a valid "spiffe://trust-domain/path" and
  /// the only URI SAN (X.509-SVID rules); empty otherwise.
  std::string spiffe_id{};

  /// Whether the identity has `principal`, one of "spiffe://..." (the SPIFFE ID), "dns:<name>"
  /// (case-insensitive), "uri:<uri>", "email:<address>", "ip:<address>" or "subject:<DN>" (exact).
  bool has_principal(std::string_view principal) const;
  /// Whether the SPIFFE ID is `pattern`, or starts with it when `pattern` ends in "/*"
  /// ("spiffe://corp/ns/billing/*").
  bool spiffe_id_matches(std::string_view pattern) const;
};

/// True for a syntactically valid SPIFFE ID: "spiffe://" + a trust domain of [a-z0-9.-_] + a path
/// of non-empty segments of [A-Za-z0-9.-_] (no "." or ".." segment, no trailing '/'), at most 2048
/// bytes, no query or fragment.
bool is_spiffe_id(std::string_view text) noexcept;
/// A principal as ClientIdentity::has_principal takes it (known prefix, non-empty value).
bool is_principal(std::string_view text) noexcept;

}  // namespace gatehouse
