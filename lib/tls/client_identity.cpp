#include "tls/client_identity.hpp"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>

#include "util/openssl_ptr.hpp"
#include "gatehouse/headers.hpp"

namespace gatehouse {
namespace {

bool is_printable_field(std::string_view s) noexcept {
  return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

std::string_view asn1_text(const ASN1_STRING* s) noexcept {
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s))};
}

std::string name_text(const X509_NAME* name) {
  detail::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  // RFC 2253 with UTF-8 kept as is (not escaped to \XX), as most tools print DNs.
  if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) return {};
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}

bool segment_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
         c == '_';
}

bool iequals_prefix(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

}  // namespace

bool is_spiffe_id(std::string_view text) noexcept {
  constexpr std::string_view scheme = "spiffe://";
  if (text.size() > 2048 || !text.starts_with(scheme)) return false;
  text.remove_prefix(scheme.size());
  const auto slash = text.find('/');
  const std::string_view domain = text.substr(0, slash);
  if (domain.empty()) return false;
  for (char c : domain)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_')) return false;
  if (slash == std::string_view::npos) return true;  // the trust domain itself
  std::string_view path = text.substr(slash);
  while (!path.empty()) {
    path.remove_prefix(1);  // the '/'
    const auto next = path.find('/');
    const std::string_view seg = path.substr(0, next);
    if (seg.empty() || seg == "." || seg == "..") return false;
    if (!std::all_of(seg.begin(), seg.end(), segment_char)) return false;
    path = next == std::string_view::npos ? std::string_view{} : path.substr(next);
  }
  return true;
}

bool is_principal(std::string_view text) noexcept {
  if (text.starts_with("spiffe://")) return is_spiffe_id(text);
  for (std::string_view prefix : {"dns:", "uri:", "email:", "ip:", "subject:"})
    if (text.starts_with(prefix)) return text.size() > prefix.size() && is_printable_field(text);
  return false;
}

bool ClientIdentity::spiffe_id_matches(std::string_view pattern) const {
  if (spiffe_id.empty()) return false;
  if (pattern.ends_with("/*")) {
    pattern.remove_suffix(1);  // keep the '/': "spiffe://corp/ns/a/*" must not match ".../ab"
    return std::string_view(spiffe_id).starts_with(pattern);
  }
  return spiffe_id == pattern;
}

bool ClientIdentity::has_principal(std::string_view p) const {
  auto in = [](const std::vector<std::string>& list, std::string_view v) {
    return std::find(list.begin(), list.end(), v) != list.end();
  };
  if (p.starts_with("spiffe://")) return spiffe_id_matches(p);
  if (p.starts_with("dns:")) {
    p.remove_prefix(4);
    return std::any_of(dns_names.begin(), dns_names.end(), [&](const std::string& d) { return iequals(d, p); });
  }
  if (p.starts_with("uri:")) return in(uris, p.substr(4));
  if (p.starts_with("email:")) return in(emails, p.substr(6));
  if (p.starts_with("ip:")) return in(ips, p.substr(3));
  if (p.starts_with("subject:")) return !subject.empty() && subject == p.substr(8);
  return false;
}

namespace detail {

ClientIdentity read_client_identity(X509* cert) {
  ClientIdentity id;
  if (!cert) return id;
  id.subject = name_text(X509_get_subject_name(cert));
  id.issuer = name_text(X509_get_issuer_name(cert));
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      id.serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (!sans) return id;
  std::size_t spiffe_uris = 0, all_uris = 0;
  std::string spiffe;
  for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
    switch (gn->type) {
      case GEN_DNS:
        if (auto s = asn1_text(gn->d.dNSName); is_printable_field(s)) id.dns_names.emplace_back(s);
        break;
      case GEN_URI:
        ++all_uris;
        if (auto s = asn1_text(gn->d.uniformResourceIdentifier); is_printable_field(s)) {
          id.uris.emplace_back(s);
          if (iequals_prefix(s, "spiffe://")) {
            ++spiffe_uris;
            spiffe = s;
          }
        }
        break;
      case GEN_EMAIL:
        if (auto s = asn1_text(gn->d.rfc822Name); is_printable_field(s)) id.emails.emplace_back(s);
        break;
      case GEN_IPADD: {
        const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
        char text[INET6_ADDRSTRLEN] = {};
        const int len = ASN1_STRING_length(ip);
        if ((len == 4 && inet_ntop(AF_INET, ASN1_STRING_get0_data(ip), text, sizeof text)) ||
            (len == 16 && inet_ntop(AF_INET6, ASN1_STRING_get0_data(ip), text, sizeof text)))
          id.ips.emplace_back(text);
        break;
      }
      default: break;
    }
  }
  GENERAL_NAMES_free(sans);
  // An X.509-SVID has exactly one URI SAN; with more, which one is the workload is ambiguous.
  if (spiffe_uris == 1 && all_uris == 1 && is_spiffe_id(spiffe)) id.spiffe_id = std::move(spiffe);
  return id;
}

std::unique_ptr<const ClientIdentity> verified_client_identity(SSL* ssl) {
  if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK) return nullptr;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (!cert) return nullptr;
  return std::make_unique<const ClientIdentity>(read_client_identity(cert));
}

}  // namespace detail
}  // namespace gatehouse
