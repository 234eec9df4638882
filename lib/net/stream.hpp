// A connection that is plain TCP or TLS over TCP, with error-code (never exception) async I/O.
#pragma once
#include <cstddef>
#include <tuple>
#include <memory>

#include <asio/experimental/as_tuple.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/ssl.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

namespace gatehouse::detail {

using tcp = asio::ip::tcp;
using TlsStream = asio::ssl::stream<tcp::socket>;
inline constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
inline constexpr auto use_tuple_void = asio::use_awaitable;

// A plain connection holds only its socket; the TLS state (hundreds of bytes here plus OpenSSL's)
// is allocated for TLS connections alone.
class Stream {
 public:
  explicit Stream(tcp::socket s) : plain_(std::move(s)) {}
  Stream(tcp::socket s, asio::ssl::context& ctx)
      : plain_(s.get_executor()), tls_(std::make_unique<TlsStream>(std::move(s), ctx)) {}

  bool is_tls() const noexcept { return tls_ != nullptr; }
  tcp::socket& socket() noexcept { return tls_ ? tls_->next_layer() : plain_; }
  TlsStream& tls() noexcept { return *tls_; }

  asio::awaitable<std::tuple<asio::error_code, std::size_t>> read_some(asio::mutable_buffer b) {
    if (tls_) return tls_->async_read_some(b, use_tuple);
    return plain_.async_read_some(b, use_tuple);
  }
  template <class Buffers>
  asio::awaitable<std::tuple<asio::error_code, std::size_t>> write(const Buffers& b) {
    if (tls_) return asio::async_write(*tls_, b, use_tuple);
    return asio::async_write(plain_, b, use_tuple);
  }
  /// Cancels pending operations (a deadline fired); the stream stays open for a final answer.
  void cancel() noexcept {
    asio::error_code ec;
    socket().cancel(ec);
  }
  void close() noexcept {
    asio::error_code ec;
    socket().shutdown(tcp::socket::shutdown_both, ec);
    socket().close(ec);
  }

 private:
  tcp::socket plain_;
  std::unique_ptr<TlsStream> tls_;
};

}  // namespace gatehouse::detail
