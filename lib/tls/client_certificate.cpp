#include "tls/client_certificate.hpp"

#include <openssl/bio.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace gatehouse::detail {
namespace {

constexpr std::size_t kMaxSubject = 256;

void free_subject(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { std::free(ptr); }

// The SSL slot where the verify callback leaves the refused certificate's subject (a malloc'ed C
// string, freed with the SSL).
int refused_subject_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_subject);
  return index;
}

}  // namespace

std::string certificate_subject(X509* cert) {
  if (!cert) return {};
  const X509_NAME* name = X509_get_subject_name(cert);
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio || !name) {
    BIO_free(bio);
    return {};
  }
  std::string out;
  // RFC 2253 flags escape bytes above 0x7f, so the text is ASCII.
  if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    if (n > 0 && data) out.assign(data, std::min<std::size_t>(static_cast<std::size_t>(n), kMaxSubject));
  }
  BIO_free(bio);
  return out;
}

std::string client_certificate_subject(SSL* ssl) {
  if (!ssl) return {};
  if (X509* peer = SSL_get0_peer_certificate(ssl)) return certificate_subject(peer);
  const int index = refused_subject_index();
  if (index < 0) return {};
  const auto* refused = static_cast<const char*>(SSL_get_ex_data(ssl, index));
  return refused ? std::string(refused) : std::string();
}

int remember_refused_subject(int preverify_ok, X509_STORE_CTX* ctx) {
  if (preverify_ok) return preverify_ok;
  // The client's own certificate (depth 0), whatever link of its chain failed.
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx);
  X509* leaf = chain && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : X509_STORE_CTX_get0_cert(ctx);
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  const int index = refused_subject_index();
  if (!ssl || !leaf || index < 0 || SSL_get_ex_data(ssl, index)) return preverify_ok;
  const std::string subject = certificate_subject(leaf);
  if (char* copy = static_cast<char*>(std::malloc(subject.size() + 1))) {
    std::memcpy(copy, subject.c_str(), subject.size() + 1);
    if (!SSL_set_ex_data(ssl, index, copy)) std::free(copy);
  }
  return preverify_ok;
}

}  // namespace gatehouse::detail
