// A connection that is plain TCP or TLS over TCP, with error-code (never exception) async I/O.
#pragma once
#include <cstddef>
#include <tuple>
#include <variant>

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

class Stream {
 public:
  explicit Stream(tcp::socket s) : v_(std::in_place_index<0>, std::move(s)) {}
  Stream(tcp::socket s, asio::ssl::context& ctx) : v_(std::in_place_index<1>, std::move(s), ctx) {}

  bool is_tls() const noexcept { return v_.index() == 1; }
  tcp::socket& socket() noexcept {
    return is_tls() ? std::get<1>(v_).next_layer() : std::get<0>(v_);
  }
  TlsStream& tls() noexcept { return std::get<1>(v_); }

  asio::awaitable<std::tuple<asio::error_code, std::size_t>> read_some(asio::mutable_buffer b) {
    if (is_tls()) return std::get<1>(v_).async_read_some(b, use_tuple);
    return std::get<0>(v_).async_read_some(b, use_tuple);
  }
  template <class Buffers>
  asio::awaitable<std::tuple<asio::error_code, std::size_t>> write(const Buffers& b) {
    if (is_tls()) return asio::async_write(std::get<1>(v_), b, use_tuple);
    return asio::async_write(std::get<0>(v_), b, use_tuple);
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
  std::variant<tcp::socket, TlsStream> v_;
};

}  // namespace gatehouse::detail
