// The subject of a client's certificate on an mTLS listener, for events and middleware: the one
// it authenticated with, or the one that failed verification (kept by the verify callback, since
// OpenSSL drops a refused certificate).
#pragma once
#include <string>

#include <openssl/ssl.h>

namespace gatehouse::detail {

/// RFC 4514 form ("CN=client,O=Example"; other than ASCII escaped), at most 256 bytes.
std::string certificate_subject(X509* cert);

/// The client certificate's subject after a handshake: the verified one, or the refused one
/// remember_refused_subject saw; "" without one.
std::string client_certificate_subject(SSL* ssl);

/// SSL_CTX_set_verify callback of mTLS listeners: changes no decision, keeps the subject of the
/// certificate that failed (the client's own or one of its chain) for client_certificate_subject.
int remember_refused_subject(int preverify_ok, X509_STORE_CTX* ctx);

}  // namespace gatehouse::detail
