#include "tls/tls_context.hpp"
#include "tls/client_certificate.hpp"
#include "util/openssl_ptr.hpp"
#include "util/text.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

namespace gatehouse::detail {
namespace {

// TLS 1.2: forward secrecy and AEAD only. TLS 1.3 suites are all AEAD + (EC)DHE by design; they are
// named explicitly so that a system openssl.cnf cannot widen or narrow them behind our back.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* tls13_suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

// ALPN wire format: length-prefixed protocol names.
constexpr unsigned char alpn_http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// Shared by every context so that sessions stay resumable after an SNI switch (SSL_set_SSL_CTX
// copies the new context's id) and mTLS resumption does not fail with "id context uninitialized".
constexpr unsigned char session_id_context[] = {'g', 'a', 't', 'e', 'h', 'o', 'u', 's', 'e'};

[[noreturn]] void fail(const std::string& what) {
  std::string reason = openssl_error_string();
  throw std::runtime_error("TLS setup: " + what + (reason.empty() ? "" : ": " + reason));
}

void check(int rc, const std::string& what) {
  if (rc != 1) fail(what);
}

// `lowered` is already lower case (certificate names are stored that way).
bool iequals_lowered(std::string_view s, std::string_view lowered) noexcept {
  if (s.size() != lowered.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (to_lower_ascii(s[i]) != lowered[i]) return false;
  return true;
}

// Without this, OpenSSL would prompt on the terminal for an encrypted key and block startup.
int refuse_password(char*, int, int, void*) { return -1; }

void load_certificate(SSL_CTX* ctx, const CertificateFiles& files) {
  if (files.cert_file.empty() || files.key_file.empty())
    throw std::runtime_error("TLS setup: a certificate needs both cert_file and key_file (got '" +
                             files.cert_file + "' and '" + files.key_file + "')");
  ERR_clear_error();
  check(SSL_CTX_use_certificate_chain_file(ctx, files.cert_file.c_str()),
        "cannot load certificate chain '" + files.cert_file + "'");

  // Read the key ourselves so that "unreadable file" and "wrong key" give distinct messages.
  BioPtr bio(BIO_new_file(files.key_file.c_str(), "r"));
  if (!bio) fail("cannot open private key '" + files.key_file + "'");
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_password, nullptr));
  if (!key) fail("cannot read a PEM private key (unencrypted) from '" + files.key_file + "'");
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1)
    fail("private key '" + files.key_file + "' does not match certificate '" + files.cert_file + "'");
}

// Picks http/1.1 when the client offers it; otherwise the handshake goes on without ALPN.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  unsigned int i = 0;
  while (i < inlen) {
    unsigned int len = in[i];
    if (len == 0 || i + 1 + len > inlen) break;  // malformed list: ignore the rest
    if (len == sizeof alpn_http11 - 1 && std::memcmp(in + i + 1, alpn_http11 + 1, len) == 0) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

void set_protocols(SSL_CTX* ctx) {
  check(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), "cannot set minimum TLS version");
  check(SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION), "cannot set maximum TLS version");
  check(SSL_CTX_set_cipher_list(ctx, tls12_ciphers), "cannot set TLS 1.2 ciphers");
  check(SSL_CTX_set_ciphersuites(ctx, tls13_suites), "cannot set TLS 1.3 cipher suites");
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // OpenSSL's record buffers (about 34 KiB per connection) go back while a connection is idle.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

// Revocation for client certificates: every CRL of every file goes into the context's store, and
// the store checks the leaf (or the whole chain) against them. A CRL that is not signed by a CA of
// client_ca_file is rejected at verification time (OpenSSL checks the CRL's signature then).
void load_crls(SSL_CTX* ctx, const ServerTls& tls) {
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (const std::string& file : tls.crl_files) {
    BioPtr bio(BIO_new_file(file.c_str(), "r"));
    if (!bio) fail("cannot open CRL file '" + file + "'");
    int count = 0;
    for (;;) {
      X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, refuse_password, nullptr);
      if (!crl) break;
      const int added = X509_STORE_add_crl(store, crl);
      X509_CRL_free(crl);  // the store holds its own reference
      if (added != 1) fail("cannot add a CRL from '" + file + "'");
      ++count;
    }
    // The loop ends on "no more PEM blocks" (expected) or on a broken one (an error).
    const unsigned long last = ERR_peek_last_error();
    if (count > 0 && ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) ERR_clear_error();
    if (count == 0 || ERR_peek_error() != 0) fail("no valid PEM CRL in '" + file + "'");
  }
  unsigned long flags = X509_V_FLAG_CRL_CHECK;
  if (tls.crl_check_chain) flags |= X509_V_FLAG_CRL_CHECK_ALL;
  check(X509_STORE_set_flags(store, flags), "cannot enable CRL checks");
}

// Applied to every server context: after an SNI switch, ALPN, the verify store and the client CA
// list are taken from the new context, so they must all be configured alike.
void configure_server(SSL_CTX* ctx, const ServerTls& tls, const CertificateFiles& cert) {
  ERR_clear_error();
  set_protocols(ctx);
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  check(SSL_CTX_set_session_id_context(ctx, session_id_context, sizeof session_id_context),
        "cannot set session id context");
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  load_certificate(ctx, cert);

  if (!tls.client_ca_file.empty()) {
    check(SSL_CTX_load_verify_file(ctx, tls.client_ca_file.c_str()),
          "cannot load client CA file '" + tls.client_ca_file + "'");
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str());
    if (!names) fail("no CA certificate names in client CA file '" + tls.client_ca_file + "'");
    SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, remember_refused_subject);
    if (tls.max_chain_depth >= 0) SSL_CTX_set_verify_depth(ctx, tls.max_chain_depth);
    if (!tls.crl_files.empty()) load_crls(ctx, tls);
  } else if (!tls.crl_files.empty() || tls.max_chain_depth >= 0) {
    throw std::runtime_error("TLS setup: CRLs and a maximum chain depth need client_ca_file (mTLS)");
  }
}

// Names a certificate answers to for SNI, lower case: DNS SANs, or the CN when there are none.
std::vector<std::string> certificate_names(X509* cert) {
  std::vector<std::string> names;
  if (!cert) return names;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type != GEN_DNS) continue;
      std::string_view dns(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                           static_cast<std::size_t>(ASN1_STRING_length(gn->d.dNSName)));
      if (!dns.empty() && dns.find('\0') == std::string_view::npos) names.push_back(to_lower_ascii(dns));
    }
    GENERAL_NAMES_free(sans);
  }
  if (!names.empty()) return names;

  X509_NAME* subject = X509_get_subject_name(cert);
  int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return names;
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index)));
  if (len > 0) {
    std::string_view cn(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len));
    if (cn.find('\0') == std::string_view::npos) names.push_back(to_lower_ascii(cn));
  }
  OPENSSL_free(utf8);
  return names;
}

// "*.example.com" matches exactly one extra leftmost label.
bool wildcard_matches(std::string_view host, std::string_view pattern) noexcept {
  if (pattern.size() < 3 || pattern[0] != '*' || pattern[1] != '.') return false;
  std::size_t dot = host.find('.');
  if (dot == 0 || dot == std::string_view::npos) return false;
  return iequals_lowered(host.substr(dot), pattern.substr(1));
}

struct SniEntry {
  SSL_CTX* ctx;  // owned (one reference) unless it is the default context
  std::vector<std::string> names;
};

// Owned by the default SSL_CTX through ex_data: lives exactly as long as that context, which every
// SSL made from it keeps alive, so the servername callback never sees a dangling table.
struct SniTable {
  std::vector<SniEntry> entries;  // entries[0] is the default context, not owned

  SniTable() = default;
  SniTable(const SniTable&) = delete;
  SniTable& operator=(const SniTable&) = delete;
  ~SniTable() {
    for (std::size_t i = 1; i < entries.size(); ++i) SSL_CTX_free(entries[i].ctx);
  }

  SSL_CTX* find(std::string_view host) const noexcept {
    for (const SniEntry& e : entries)
      for (const std::string& name : e.names)
        if (iequals_lowered(host, name)) return e.ctx;
    for (const SniEntry& e : entries)
      for (const std::string& name : e.names)
        if (wildcard_matches(host, name)) return e.ctx;
    return nullptr;
  }
};

void free_sni_table(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<SniTable*>(ptr);
}

int sni_table_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_sni_table);
  return index;
}

int on_server_name(SSL* ssl, int* alert, void* arg) {
  const char* requested = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!requested) return SSL_TLSEXT_ERR_OK;  // no SNI: default certificate
  std::string_view host(requested);
  if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);
  SSL_CTX* chosen = static_cast<const SniTable*>(arg)->find(host);
  if (!chosen || chosen == SSL_get_SSL_CTX(ssl)) return SSL_TLSEXT_ERR_OK;
  if (!SSL_set_SSL_CTX(ssl, chosen)) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

void install_sni(SSL_CTX* default_ctx, const ServerTls& tls) {
  int index = sni_table_index();
  if (index < 0) fail("cannot allocate SSL_CTX ex_data index");

  auto table = std::make_unique<SniTable>();
  table->entries.push_back({default_ctx, certificate_names(SSL_CTX_get0_certificate(default_ctx))});
  for (std::size_t i = 1; i < tls.certificates.size(); ++i) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) fail("cannot create SSL_CTX");
    configure_server(ctx.get(), tls, tls.certificates[i]);
    auto names = certificate_names(SSL_CTX_get0_certificate(ctx.get()));
    table->entries.push_back({ctx.get(), std::move(names)});
    ctx.release();  // now owned by the table
  }
  check(SSL_CTX_set_ex_data(default_ctx, index, table.get()), "cannot attach SNI table");
  SniTable* raw = table.release();  // now owned by default_ctx
  SSL_CTX_set_tlsext_servername_callback(default_ctx, on_server_name);
  SSL_CTX_set_tlsext_servername_arg(default_ctx, raw);
}

// Fails every verification: used when a client SSL could not be given a name to check.
int reject_certificate(int, X509_STORE_CTX* store) {
  X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

bool fail_closed(SSL* ssl) noexcept {
  SSL_set_verify(ssl, SSL_VERIFY_PEER, reject_certificate);
  ERR_clear_error();  // keep the per-connection path from leaving stale errors behind
  return false;
}

}  // namespace

std::string openssl_error_string() {
  std::string out;
  char buf[256];
  while (unsigned long code = ERR_get_error()) {
    ERR_error_string_n(code, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

std::shared_ptr<asio::ssl::context> make_server_context(const ServerTls& tls) {
  if (tls.certificates.empty()) throw std::runtime_error("TLS setup: a TLS listener needs at least one certificate");
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  configure_server(ctx->native_handle(), tls, tls.certificates.front());
  if (tls.certificates.size() > 1) install_sni(ctx->native_handle(), tls);
  return ctx;
}

std::shared_ptr<asio::ssl::context> make_client_context(const UpstreamTls& tls) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* c = ctx->native_handle();
  ERR_clear_error();
  set_protocols(c);
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  if (!tls.ca_file.empty())
    check(SSL_CTX_load_verify_file(c, tls.ca_file.c_str()), "cannot load CA file '" + tls.ca_file + "'");
  else
    check(SSL_CTX_set_default_verify_paths(c), "cannot load the system CA store");
  // Unlike most OpenSSL calls, this one returns 0 on success.
  if (SSL_CTX_set_alpn_protos(c, alpn_http11, sizeof alpn_http11) != 0) fail("cannot set ALPN");
  const CertificateFiles& mine = tls.client_certificate;
  if (!mine.cert_file.empty() || !mine.key_file.empty()) load_certificate(c, mine);
  return ctx;
}

bool prepare_client_stream(SSL* ssl, std::string_view host) noexcept {
  if (!ssl) return false;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);  // SNI forbids the root dot
  char name[256];  // DNS names are at most 253 characters: no allocation needed
  if (host.empty() || host.size() >= sizeof name || host.find('\0') != std::string_view::npos)
    return fail_closed(ssl);
  std::memcpy(name, host.data(), host.size());
  name[host.size()] = '\0';

  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  unsigned char addr[16];
  if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1) {
    // IP literals are not allowed in SNI (RFC 6066); the certificate must carry the address.
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name) != 1) return fail_closed(ssl);
    return true;
  }
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (SSL_set_tlsext_host_name(ssl, name) != 1 || SSL_set1_host(ssl, name) != 1) return fail_closed(ssl);
  return true;
}

}  // namespace gatehouse::detail
