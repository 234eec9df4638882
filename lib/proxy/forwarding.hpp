// What a proxy must change in a message it forwards: hop-by-hop fields out, forwarding fields in.
#pragma once
#include <cstdint>
#include <string_view>

#include <asio/ip/address.hpp>

#include "gatehouse/exchange.hpp"
#include "gatehouse/headers.hpp"
#include "http1/serializer.hpp"
#include "net/cidr.hpp"

namespace gatehouse::detail {

/// Removes the hop-by-hop fields (RFC 9110 7.6.1), every field named in Connection, and the framing
/// fields Content-Length and Transfer-Encoding, which the gateway sets itself when it re-frames.
void strip_hop_by_hop(Headers& headers);

/// How a request is framed to the upstream: Content-Length for a body of known `length`, chunked
/// for one of unknown length (-1), and without a body Content-Length: 0 for POST, PUT and PATCH,
/// whose content has a meaning (RFC 9110 8.6; some origins answer 411 otherwise), no field for
/// other methods.
Framing request_framing(std::string_view method, bool has_body, std::int64_t length) noexcept;

/// The client's address: the peer itself, unless the peer is a trusted proxy; then the rightmost
/// X-Forwarded-For entry that is not a trusted proxy (entries that do not parse end the walk).
asio::ip::address client_address_from(const Headers& headers, const asio::ip::address& peer,
                                      const CidrSet& trusted);

/// Sets X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host and Forwarded (RFC 7239) on the
/// request to the upstream. Values a client sent are kept (and appended to) only when the peer is
/// trusted; otherwise they are replaced.
/// `peer_text` is the peer address as text (formatted once per connection: inet_ntop is costly).
void set_forwarded_headers(Exchange& ex, std::string_view peer_text);
/// The peer address as set_forwarded_headers wants it.
std::string address_text(const asio::ip::address& a);

}  // namespace gatehouse::detail
