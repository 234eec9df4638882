// Test PKI generated at test time: a throw-away CA and leaf certificates it signs, as PEM files.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "gatehouse/tls_options.hpp"

namespace gatehouse::test {

/// A self-signed ECDSA P-256 CA in a fresh directory /tmp/gatehouse-pki-XXXXXX, removed with all
/// its files by the destructor. Certificates are valid from one hour ago for 30 days.
class TestPki {
 public:
  /// `ca_name` becomes the CA's common name; use distinct names for distinct CAs in one test.
  explicit TestPki(std::string ca_name = "gatehouse test CA");
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  /// Issues a leaf certificate signed by this CA and writes <dir>/<name>.crt and <dir>/<name>.key
  /// (key: unencrypted PKCS#8, mode 0600). `name` is the subject CN and the file stem (use letters,
  /// digits, '-', '_', '.'). The SAN holds `dns` and `ips`; with both empty there is no SAN and
  /// only the CN names the certificate. `client` selects the clientAuth instead of the serverAuth
  /// extended key usage. Throws std::runtime_error on failure.
  CertificateFiles issue(const std::string& name, const std::vector<std::string>& dns,
                         const std::vector<std::string>& ips = {}, bool client = false);

  /// Every kind of SAN a client certificate may carry.
  struct Names {
    std::vector<std::string> dns{}, ips{}, uris{}, emails{};
  };
  /// A client certificate (clientAuth) with these SANs; e.g. a SPIFFE X.509-SVID has one URI SAN.
  CertificateFiles issue_client(const std::string& name, const Names& names);

  /// An intermediate CA signed by this one, with a directory of its own. The certificate files it
  /// issues hold the leaf followed by the intermediate (the chain a client sends); its ca_cert is
  /// the intermediate alone.
  std::unique_ptr<TestPki> intermediate(const std::string& ca_name);

  /// Writes <dir>/<file_name>: a PEM CRL signed by this CA that lists the certificates in
  /// `revoked` (files this CA issued), valid from an hour ago until `next_update_seconds` from now
  /// (negative: already expired). Returns the path.
  std::string write_crl(const std::vector<CertificateFiles>& revoked, long next_update_seconds = 3600,
                        const std::string& file_name = "ca.crl");

  std::string dir;      ///< the temporary directory
  std::string ca_cert;  ///< PEM file of the CA certificate (trust anchor for clients/servers)
  std::string ca_key;   ///< PEM file of the CA key

 private:
  struct Impl;
  TestPki(const std::string& ca_name, TestPki& parent);
  CertificateFiles issue_with(const std::string& name, const std::string& san, bool client);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gatehouse::test
