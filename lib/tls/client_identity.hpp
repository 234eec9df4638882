// Reads a ClientIdentity from a verified peer certificate (OpenSSL), once per connection.
#pragma once
#include <memory>

#include "gatehouse/client_identity.hpp"

struct ssl_st;
struct x509_st;

namespace gatehouse::detail {

/// The identity of `cert`; never throws except std::bad_alloc. Names with embedded NULs or
/// control bytes are left out (they could be made to look like another name).
ClientIdentity read_client_identity(x509_st* cert);
/// The identity of the peer of a server-side SSL when it presented a certificate that verified;
/// null otherwise.
std::unique_ptr<const ClientIdentity> verified_client_identity(ssl_st* ssl);

}  // namespace gatehouse::detail
