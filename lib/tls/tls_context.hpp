// OpenSSL contexts for TLS termination on listeners and for TLS connections to upstreams.
#pragma once
#include <memory>
#include <string>
#include <string_view>

// Asio 1.22 guards its OpenSSL 1.x calls with OPENSSL_VERSION_NUMBER checks, so under OpenSSL 3
// this include is warning-free with -Wall -Wextra (checked); no pragma is needed around it.
#include <asio/ssl/context.hpp>
#include <openssl/ssl.h>

#include "gatehouse/tls_options.hpp"

namespace gatehouse::detail {

/// Builds the context of a listener's TLS streams (tls_stream.hpp). TLS 1.2-1.3, ECDHE+AEAD suites only,
/// no compression or renegotiation, ALPN http/1.1. With several certificates, SNI switches the
/// connection to the context of the first certificate whose names match (exact names before
/// wildcards); the first certificate is the default. The extra contexts are owned by the returned
/// SSL_CTX itself, so connections that outlive the shared_ptr stay valid.
/// Throws std::runtime_error (naming the file and the OpenSSL reason) on any setup failure.
std::shared_ptr<asio::ssl::context> make_server_context(const ServerTls& tls);

/// Builds the context for connections to one upstream: TLS 1.2+, ECDHE+AEAD suites for TLS 1.2,
/// peer verification always on (ca_file or the system trust store), ALPN http/1.1 offered,
/// optional client certificate. Throws std::runtime_error on setup failure.
/// Host-name checks are per connection: see prepare_client_stream.
std::shared_ptr<asio::ssl::context> make_client_context(const UpstreamTls& tls);

/// Call on every client SSL (stream.native_handle()) before the handshake. Sets SNI (names only,
/// not IP literals) and the name or address the certificate must match. `host` may be a DNS name,
/// an IPv4 literal or an IPv6 literal with or without brackets.
/// Never throws. Returns false when the host is unusable (empty, too long, embedded NUL) or OpenSSL
/// refused it; the SSL is then set to fail verification, so a handshake cannot succeed anyway.
bool prepare_client_stream(SSL* ssl, std::string_view host) noexcept;

/// Drains this thread's OpenSSL error queue into one "; "-separated line ("" if empty).
std::string openssl_error_string();

}  // namespace gatehouse::detail
