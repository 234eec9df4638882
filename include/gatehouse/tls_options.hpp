// TLS settings for listeners (termination) and for connections to upstreams.
#pragma once
#include <chrono>
#include <string>
#include <vector>

namespace gatehouse {

/// A certificate chain and its private key, both PEM files.
struct CertificateFiles {
  std::string cert_file{};  ///< leaf first, then intermediates
  std::string key_file{};
};

/// TLS termination on a listener. Defaults: TLS 1.2 and 1.3 only, forward-secret AEAD suites only,
/// ALPN http/1.1. With several certificates, SNI picks the one whose names match; the first is the
/// default.
struct ServerTls {
  std::vector<CertificateFiles> certificates{};
  std::chrono::milliseconds handshake_timeout{10'000};
  /// Optional: require client certificates signed by this CA bundle (mTLS).
  std::string client_ca_file{};
  /// PEM files of certificate revocation lists for client certificates (mTLS only). With any, a
  /// client certificate is refused when its serial is listed, and also when no valid CRL of its
  /// issuer is loaded (one missing, or past its nextUpdate): revocation checks fail closed. Read
  /// when the listener is built, so a configuration reload picks up new CRLs.
  std::vector<std::string> crl_files{};
  /// With CRLs: check every certificate of the client's chain (intermediates too), not only the
  /// leaf. Each issuer then needs its CRL.
  bool crl_check_chain = false;
  /// Most intermediate CA certificates allowed between a client certificate and the trust anchor
  /// (OpenSSL's verify depth); a longer chain is refused. -1: OpenSSL's default (100).
  int max_chain_depth = -1;
};

/// TLS from the gateway to an upstream. The server certificate is always verified, with the host
/// name, against ca_file or the system's trust store.
struct UpstreamTls {
  std::string ca_file{};      ///< empty: the system's CA bundle
  std::string server_name{};  ///< SNI and name to verify; empty: the endpoint's host
  CertificateFiles client_certificate{};  ///< optional, for mTLS to the upstream
};

}  // namespace gatehouse
