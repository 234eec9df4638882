// TLS over a TCP socket, driven by the socket's readiness through Asio's ordinary reads and
// writes, with OpenSSL working on the connection's own buffers through a small BIO.
//
// Why not asio::ssl::stream: its engine copies every received byte once more (socket → its input
// buffer → a memory BIO → OpenSSL), runs a state machine and a composed operation around every
// SSL_read/SSL_write, writes one record per buffer, and keeps 34 KiB of buffers per connection for
// the connection's lifetime. Here received bytes go from the socket into one buffer that OpenSSL
// reads directly, small buffers are gathered into full records, records leave in one send, and
// both buffers come from a per-thread cache only while bytes are in flight: an idle TLS
// connection holds no buffer. Reads stay speculative (Asio tries recv before waiting, so a
// re-armed read costs no epoll_ctl), which a wait-for-readiness design would lose.
#pragma once
#include <cstddef>
#include <memory>
#include <span>
#include <tuple>

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/steady_timer.hpp>
#include <openssl/ssl.h>

namespace gatehouse::detail {

class TlsStream {
 public:
  enum class Role { client, server };
  using Result = std::tuple<asio::error_code, std::size_t>;

  /// Throws std::bad_alloc when OpenSSL cannot allocate the connection's state.
  explicit TlsStream(asio::ssl::context& ctx);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  SSL* native_handle() const noexcept { return ssl_; }

  /// The TLS handshake over `socket` (connected). Errors: the socket's, asio::error::eof or
  /// asio::ssl::error::stream_truncated when the peer closed, else OpenSSL's (asio's ssl category).
  asio::awaitable<asio::error_code> handshake(asio::ip::tcp::socket& socket, Role role);

  /// Up to b.size() decrypted bytes. asio::error::eof after the peer's close_notify;
  /// asio::ssl::error::stream_truncated when the connection ended without one.
  asio::awaitable<Result> read_some(asio::ip::tcp::socket& socket, asio::mutable_buffer b);

  /// Writes all of `one` (when `many` is empty) or of `many`, encrypted, and returns the plaintext
  /// byte count. Small buffers are gathered into full records; records leave in few sends.
  /// `many` must stay valid until the write completes (a caller's array, co_awaited at once).
  asio::awaitable<Result> write(asio::ip::tcp::socket& socket, asio::const_buffer one,
                                std::span<const asio::const_buffer> many = {});

  /// Without waiting: encrypts `many` (up to one output block of records) and sends what the
  /// socket takes now. Returns the plaintext bytes taken (0 while another send is in progress);
  /// records the socket did not take stay pending (has_pending_output()) and the next write()
  /// sends them first. `ec`: a TLS or socket error (the stream is then broken).
  std::size_t write_now(asio::ip::tcp::socket& socket, std::span<const asio::const_buffer> many,
                        asio::error_code& ec);
  bool has_pending_output() const noexcept { return out_end_ > 0; }

  /// True when bytes already received wait above the socket (undecrypted or decrypted): a reader
  /// must not wait for the socket to become readable before reading them.
  bool has_buffered_input() const noexcept;

 private:
  friend struct TlsBio;

  struct Cursor {
    std::size_t index = 0, offset = 0;  // the next plaintext byte: many[index], at offset
    std::size_t plain = 0;              // plaintext bytes encrypted so far
  };
  /// Encrypts from `at` into the output block while a whole record fits there.
  asio::error_code encrypt(std::span<const asio::const_buffer> many, Cursor& at);
  asio::awaitable<asio::error_code> fill_input(asio::ip::tcp::socket& socket);
  asio::awaitable<asio::error_code> flush(asio::ip::tcp::socket& socket, bool until_sent);
  /// The error for an SSL call's SSL_get_error result (reads and clears the error queue).
  asio::error_code failure(int ssl_error) const;
  void release_input_if_drained() noexcept;
  bool has_output() const noexcept;

  // The BIO's side: OpenSSL reads received bytes from input_ and appends records to output_.
  int bio_read(char* data, std::size_t size, std::size_t& read) noexcept;
  int bio_write(const char* data, std::size_t size, std::size_t& written) noexcept;

  SSL* ssl_ = nullptr;
  // Blocks from the thread's cache (tls_buffer_cache.hpp), held only while bytes are in them.
  char* input_ = nullptr;    // received, not yet taken by OpenSSL: [in_begin_, in_end_)
  char* output_ = nullptr;   // records not yet sent: [0, out_end_)
  char* sending_ = nullptr;  // records being sent (output_ may fill meanwhile)
  std::unique_ptr<asio::steady_timer> flushed_;  // wakes writers waiting for another's send
  asio::error_code broken_;         // a send failed: every later write fails
  std::size_t in_begin_ = 0, in_end_ = 0, out_end_ = 0;
  bool peer_closed_ = false;  // the socket read end of stream
  bool flushing_ = false;
};

}  // namespace gatehouse::detail
