// A listener's IP filter, applied by the worker to each accepted connection before anything is
// read from it (before the TLS handshake).
#pragma once
#include <string_view>

#include <asio/ip/tcp.hpp>

#include "gatehouse/middleware/ip_filter.hpp"

namespace gatehouse {
class SecurityEvents;
namespace detail {
struct WorkerMetrics;

/// True when `filter` lets `peer` in. Otherwise the verdict is counted and an ip_filtered event
/// (stage "listener") reported, and the caller closes the connection.
bool admit_connection(const IpFilter& filter, const asio::ip::tcp::endpoint& peer, std::string_view listener,
                      WorkerMetrics* metrics, SecurityEvents* events) noexcept;

}  // namespace detail
}  // namespace gatehouse
