#include "support/test_certs.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <utility>

namespace gatehouse::test {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
  void operator()(X509* p) const noexcept { X509_free(p); }
  void operator()(X509_EXTENSION* p) const noexcept { X509_EXTENSION_free(p); }
  void operator()(BIGNUM* p) const noexcept { BN_free(p); }
  void operator()(BIO* p) const noexcept { BIO_free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Free>;
using CertPtr = std::unique_ptr<X509, Free>;

[[noreturn]] void fail(const std::string& what) {
  std::string reasons;
  char buf[256];
  while (unsigned long code = ERR_get_error()) {
    ERR_error_string_n(code, buf, sizeof buf);
    reasons += reasons.empty() ? ": " : "; ";
    reasons += buf;
  }
  throw std::runtime_error("test PKI: " + what + reasons);
}

void check(int rc, const char* what) {
  if (rc != 1) fail(what);
}

KeyPtr new_key() {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) fail("EC key generation failed");
  return key;
}

using Extensions = std::vector<std::pair<int, std::string>>;

// Builds and signs a certificate; issuer == nullptr means self-signed with `key`.
CertPtr make_certificate(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                         const Extensions& extensions) {
  CertPtr cert(X509_new());
  if (!cert) fail("X509_new failed");
  X509* x = cert.get();
  check(X509_set_version(x, X509_VERSION_3), "X509_set_version");

  // Random positive 127-bit serial: unique enough for re-issued names within one CA.
  std::unique_ptr<BIGNUM, Free> serial(BN_new());
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x)))
    fail("serial number");

  X509_NAME* subject = X509_get_subject_name(x);
  check(X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>("gatehouse tests"), -1, -1, 0),
        "subject O");
  check(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0),
        "subject CN");
  check(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject), "issuer name");

  // Back-dated an hour so that small clock differences never make a fresh certificate invalid.
  if (!X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(x), 30L * 24 * 3600))
    fail("validity");
  check(X509_set_pubkey(x, key), "X509_set_pubkey");

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer : x, x, nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    std::unique_ptr<X509_EXTENSION, Free> ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
    if (!ext) fail("extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
    check(X509_add_ext(x, ext.get(), -1), "X509_add_ext");
  }
  if (X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) <= 0) fail("X509_sign");
  return cert;
}

void write_pem(const std::string& path, X509* cert) {
  std::unique_ptr<BIO, Free> bio(BIO_new_file(path.c_str(), "w"));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) fail("cannot write " + path);
}

void write_pem(const std::string& path, EVP_PKEY* key) {
  std::unique_ptr<BIO, Free> bio(BIO_new_file(path.c_str(), "w"));
  if (!bio) fail("cannot write " + path);
  ::chmod(path.c_str(), 0600);  // private keys: owner only, as a real deployment would have it
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    fail("cannot write " + path);
}

}  // namespace

struct TestPki::Impl {
  KeyPtr key;
  CertPtr cert;
  bool intermediate = false;  // leaf files get this CA's certificate appended
};

TestPki::TestPki(std::string ca_name) : impl_(std::make_unique<Impl>()) {
  char path[] = "/tmp/gatehouse-pki-XXXXXX";
  if (!::mkdtemp(path)) throw std::runtime_error("test PKI: mkdtemp failed");
  dir = path;
  try {
    impl_->key = new_key();
    impl_->cert = make_certificate(ca_name, impl_->key.get(), nullptr, nullptr,
                                   {{NID_basic_constraints, "critical,CA:TRUE"},
                                    {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                    {NID_subject_key_identifier, "hash"}});
    ca_cert = dir + "/ca.crt";
    ca_key = dir + "/ca.key";
    write_pem(ca_cert, impl_->cert.get());
    write_pem(ca_key, impl_->key.get());
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    throw;
  }
}

TestPki::~TestPki() {
  std::error_code ec;  // best effort: a destructor must not throw
  std::filesystem::remove_all(dir, ec);
}

CertificateFiles TestPki::issue(const std::string& name, const std::vector<std::string>& dns,
                                const std::vector<std::string>& ips, bool client) {
  std::string san;
  for (const auto& d : dns) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  for (const auto& ip : ips) san += (san.empty() ? "IP:" : ",IP:") + ip;
  return issue_with(name, san, client);
}

CertificateFiles TestPki::issue_client(const std::string& name, const Names& names) {
  std::string san;
  auto add = [&san](const char* tag, const std::vector<std::string>& values) {
    for (const auto& v : values) san += (san.empty() ? "" : ",") + std::string(tag) + ":" + v;
  };
  add("DNS", names.dns);
  add("IP", names.ips);
  add("URI", names.uris);
  add("email", names.emails);
  return issue_with(name, san, true);
}

CertificateFiles TestPki::issue_with(const std::string& name, const std::string& san, bool client) {

  Extensions extensions{{NID_basic_constraints, "critical,CA:FALSE"},
                        {NID_key_usage, "critical,digitalSignature"},
                        {NID_ext_key_usage, client ? "clientAuth" : "serverAuth"},
                        {NID_subject_key_identifier, "hash"},
                        {NID_authority_key_identifier, "keyid:always"}};
  if (!san.empty()) extensions.emplace_back(NID_subject_alt_name, san);

  KeyPtr key = new_key();
  CertPtr cert = make_certificate(name, key.get(), impl_->cert.get(), impl_->key.get(), extensions);
  CertificateFiles files{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  write_pem(files.cert_file, cert.get());
  if (impl_->intermediate) {
    std::unique_ptr<BIO, Free> bio(BIO_new_file(files.cert_file.c_str(), "a"));
    if (!bio || PEM_write_bio_X509(bio.get(), impl_->cert.get()) != 1) fail("cannot append to " + files.cert_file);
  }
  write_pem(files.key_file, key.get());
  return files;
}

TestPki::TestPki(const std::string& ca_name, TestPki& parent) : impl_(std::make_unique<Impl>()) {
  char path[] = "/tmp/gatehouse-pki-XXXXXX";
  if (!::mkdtemp(path)) throw std::runtime_error("test PKI: mkdtemp failed");
  dir = path;
  try {
    impl_->key = new_key();
    impl_->cert = make_certificate(ca_name, impl_->key.get(), parent.impl_->cert.get(), parent.impl_->key.get(),
                                   {{NID_basic_constraints, "critical,CA:TRUE"},
                                    {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                    {NID_subject_key_identifier, "hash"},
                                    {NID_authority_key_identifier, "keyid:always"}});
    impl_->intermediate = true;
    ca_cert = dir + "/ca.crt";
    ca_key = dir + "/ca.key";
    write_pem(ca_cert, impl_->cert.get());
    write_pem(ca_key, impl_->key.get());
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    throw;
  }
}

std::unique_ptr<TestPki> TestPki::intermediate(const std::string& ca_name) {
  return std::unique_ptr<TestPki>(new TestPki(ca_name, *this));
}

std::string TestPki::write_crl(const std::vector<CertificateFiles>& revoked, long next_update_seconds,
                               const std::string& file_name) {
  std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)> crl(X509_CRL_new(), X509_CRL_free);
  if (!crl) fail("X509_CRL_new");
  check(X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2), "X509_CRL_set_version");
  check(X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(impl_->cert.get())), "CRL issuer");
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> last(X509_gmtime_adj(nullptr, -3600), ASN1_TIME_free),
      next(X509_gmtime_adj(nullptr, next_update_seconds), ASN1_TIME_free);
  if (!last || !next) fail("CRL times");
  check(X509_CRL_set1_lastUpdate(crl.get(), last.get()), "CRL lastUpdate");
  check(X509_CRL_set1_nextUpdate(crl.get(), next.get()), "CRL nextUpdate");
  for (const auto& files : revoked) {
    std::unique_ptr<BIO, Free> bio(BIO_new_file(files.cert_file.c_str(), "r"));
    CertPtr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!cert) fail("cannot read " + files.cert_file);
    X509_REVOKED* entry = X509_REVOKED_new();
    if (!entry || X509_REVOKED_set_serialNumber(entry, X509_get_serialNumber(cert.get())) != 1 ||
        X509_REVOKED_set_revocationDate(entry, last.get()) != 1 || X509_CRL_add0_revoked(crl.get(), entry) != 1) {
      X509_REVOKED_free(entry);
      fail("CRL entry");
    }
  }
  check(X509_CRL_sort(crl.get()), "X509_CRL_sort");
  if (X509_CRL_sign(crl.get(), impl_->key.get(), EVP_sha256()) <= 0) fail("X509_CRL_sign");
  const std::string path = dir + "/" + file_name;
  std::unique_ptr<BIO, Free> out(BIO_new_file(path.c_str(), "w"));
  if (!out || PEM_write_bio_X509_CRL(out.get(), crl.get()) != 1) fail("cannot write " + path);
  return path;
}

}  // namespace gatehouse::test
