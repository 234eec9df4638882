// A connection that is plain TCP or TLS over TCP, with error-code (never exception) async I/O.
#pragma once
#include <cstddef>
#include <tuple>
#include <memory>
#include <span>
#include <type_traits>

#include <asio/experimental/as_tuple.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/ssl/context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "tls/tls_stream.hpp"

namespace gatehouse::detail {

using tcp = asio::ip::tcp;
inline constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
inline constexpr auto use_tuple_void = asio::use_awaitable;

// A plain connection holds only its socket; the TLS state (lib/tls/tls_stream.hpp, plus
// OpenSSL's) is allocated for TLS connections alone.
class Stream {
 public:
  explicit Stream(tcp::socket s) : socket_(std::move(s)) {}
  Stream(tcp::socket s, asio::ssl::context& ctx) : socket_(std::move(s)), tls_(std::make_unique<TlsStream>(ctx)) {}

  bool is_tls() const noexcept { return tls_ != nullptr; }
  tcp::socket& socket() noexcept { return socket_; }
  TlsStream& tls() noexcept { return *tls_; }

  /// The TLS handshake (TLS streams only).
  asio::awaitable<asio::error_code> handshake(TlsStream::Role role) { return tls_->handshake(socket_, role); }

  /// True when received bytes wait above the socket (TLS only): read them before waiting for the
  /// socket to become readable.
  bool has_buffered_input() const noexcept { return tls_ && tls_->has_buffered_input(); }

  /// True when encrypted records wait to be sent (TLS only): the next write() sends them.
  bool has_pending_output() const noexcept { return tls_ && tls_->has_pending_output(); }

  asio::awaitable<std::tuple<asio::error_code, std::size_t>> read_some(asio::mutable_buffer b) {
    if (tls_) return tls_->read_some(socket_, b);
    return socket_.async_read_some(b, use_tuple);
  }
  /// Writes all of `b`: a single buffer, or a contiguous sequence of them (an array or
  /// BufferRange that stays valid while the write is awaited).
  template <class Buffers>
  asio::awaitable<std::tuple<asio::error_code, std::size_t>> write(const Buffers& b) {
    if (tls_) {
      if constexpr (std::is_convertible_v<const Buffers&, asio::const_buffer>) {
        return tls_->write(socket_, asio::const_buffer(b));
      } else {
        const asio::const_buffer* first = std::to_address(asio::buffer_sequence_begin(b));
        const auto count = static_cast<std::size_t>(asio::buffer_sequence_end(b) - asio::buffer_sequence_begin(b));
        return tls_->write(socket_, asio::const_buffer(), std::span<const asio::const_buffer>(first, count));
      }
    }
    return asio::async_write(socket_, b, use_tuple);
  }
  /// Cancels pending operations (a deadline fired); the stream stays open for a final answer.
  void cancel() noexcept {
    asio::error_code ec;
    socket_.cancel(ec);
  }
  void close() noexcept {
    asio::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

 private:
  tcp::socket socket_;
  std::unique_ptr<TlsStream> tls_;
};

}  // namespace gatehouse::detail
