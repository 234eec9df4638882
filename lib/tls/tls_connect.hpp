// Opening a client connection: TCP connect, then for TLS the host-name setup and the handshake, all
// under one deadline. Shared by the side HTTP client (key servers, introspection) and the proxy's
// upstream connections, so both verify peers the same way.
#pragma once
#include <chrono>
#include <span>
#include <string>
#include <string_view>

#include <asio/awaitable.hpp>
#include <asio/error_code.hpp>
#include <asio/ip/tcp.hpp>

#include "net/stream.hpp"

namespace gatehouse::detail {

/// What went wrong, as a value: connecting never throws for network or TLS trouble.
struct ConnectError {
  enum class Step : unsigned char { none, connect, handshake };
  Step step = Step::none;  ///< none: connected (and handshaken, for TLS)
  asio::error_code error{};
  bool timed_out = false;  ///< the deadline passed during `step`

  bool ok() const noexcept { return step == Step::none; }
  /// "timed out", or the error's message.
  std::string reason() const;
};

/// Connects `stream` (new, not yet open) to the first of `endpoints` that accepts, sets TCP_NODELAY
/// and, when the stream is TLS, sets SNI and the name the certificate must match to `host` (see
/// prepare_client_stream) and runs the client handshake. When `deadline` passes first, the stream
/// is closed and the error says timed_out. On failure the stream is left closed or half-open: do
/// not reuse it.
asio::awaitable<ConnectError> connect_stream(Stream& stream, std::span<const asio::ip::tcp::endpoint> endpoints,
                                             std::string_view host,
                                             std::chrono::steady_clock::time_point deadline);

}  // namespace gatehouse::detail
