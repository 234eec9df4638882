#include "tls/tls_stream.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl/error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <openssl/err.h>

#include "tls/tls_buffer_cache.hpp"

namespace gatehouse::detail {
namespace {

constexpr auto as_result = asio::experimental::as_tuple(asio::use_awaitable);

// The most plaintext one SSL_write_ex takes here, and the room its records need in the output
// block: one record's overhead (header, explicit nonce, tag, content type) is under 64 bytes
// for the suites this library enables, and a client that negotiated max_fragment_length=512
// (RFC 6066) gets 32 records per call: 2 KiB covers both.
constexpr std::size_t kMaxPlain = 16 * 1024;
constexpr std::size_t kRecordRoom = kMaxPlain + 2048;
static_assert(tls_buffers::kOutput >= 2 * kRecordRoom);
static_assert(tls_buffers::kInput >= kMaxPlain + 256 + 5);

// Small buffers are gathered here into one record's plaintext. Used only between two statements
// with no suspension in between (copy, then SSL_write), so one per thread serves every stream.
thread_local char tls_staging[kMaxPlain];

// SSL_get_error reads the thread's error queue: an error left by anything before must not be
// taken for this call's. Peeking is much cheaper than clearing when the queue is empty (it is).
void clear_stale_errors() noexcept {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace

// OpenSSL's side of the stream: reads received bytes from the stream's input block and appends
// records to its output block. Never touches the socket, so no call blocks or fails half-way.
struct TlsBio {
  static TlsStream& stream(BIO* b) noexcept { return *static_cast<TlsStream*>(BIO_get_data(b)); }

  static int read(BIO* b, char* data, std::size_t size, std::size_t* read) {
    BIO_clear_retry_flags(b);
    const int r = stream(b).bio_read(data, size, *read);
    if (r == 0 && !stream(b).peer_closed_) BIO_set_retry_read(b);
    return r;
  }
  static int write(BIO* b, const char* data, std::size_t size, std::size_t* written) {
    BIO_clear_retry_flags(b);
    const int r = stream(b).bio_write(data, size, *written);
    if (r == 0) BIO_set_retry_write(b);
    return r;
  }
  static long ctrl(BIO* b, int cmd, long, void*) {
    switch (cmd) {
      case BIO_CTRL_FLUSH: return 1;  // records leave when the stream sends its output block
      case BIO_CTRL_EOF: {
        // Tells OpenSSL that a read of nothing is the peer's close (it reports an unexpected EOF).
        const TlsStream& s = stream(b);
        return s.peer_closed_ && s.in_begin_ == s.in_end_ ? 1 : 0;
      }
      default: return 0;
    }
  }
  static BIO_METHOD* method() {
    static BIO_METHOD* const m = [] {
      const int index = BIO_get_new_index();
      BIO_METHOD* made = index < 0 ? nullptr : BIO_meth_new(index | BIO_TYPE_SOURCE_SINK, "gatehouse TLS stream");
      if (made && (!BIO_meth_set_read_ex(made, &read) || !BIO_meth_set_write_ex(made, &write) ||
                   !BIO_meth_set_ctrl(made, &ctrl))) {
        BIO_meth_free(made);
        made = nullptr;
      }
      return made;
    }();
    return m;
  }
};

TlsStream::TlsStream(asio::ssl::context& ctx) {
  BIO_METHOD* method = TlsBio::method();
  ssl_ = method ? SSL_new(ctx.native_handle()) : nullptr;
  BIO* bio = ssl_ ? BIO_new(method) : nullptr;
  if (!bio) {
    SSL_free(ssl_);
    ERR_clear_error();
    throw std::bad_alloc();
  }
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);
}

TlsStream::~TlsStream() {
  SSL_free(ssl_);
  tls_buffers::give(input_, tls_buffers::kInput);
  tls_buffers::give(output_, tls_buffers::kOutput);
  tls_buffers::give(sending_, tls_buffers::kOutput);
}

bool TlsStream::has_buffered_input() const noexcept { return in_begin_ < in_end_ || SSL_has_pending(ssl_) == 1; }

bool TlsStream::has_output() const noexcept { return out_end_ > 0; }

int TlsStream::bio_read(char* data, std::size_t size, std::size_t& read) noexcept {
  const std::size_t n = std::min(size, in_end_ - in_begin_);
  read = n;
  if (n == 0) return 0;
  std::memcpy(data, input_ + in_begin_, n);
  in_begin_ += n;
  return 1;
}

int TlsStream::bio_write(const char* data, std::size_t size, std::size_t& written) noexcept {
  written = 0;
  if (!output_) {
    try {
      output_ = tls_buffers::take(tls_buffers::kOutput);
    } catch (const std::bad_alloc&) {
      return 0;  // OpenSSL sees "retry", the stream fails the call (no room)
    }
  }
  const std::size_t n = std::min(size, tls_buffers::kOutput - out_end_);
  if (n == 0) return 0;
  std::memcpy(output_ + out_end_, data, n);
  out_end_ += n;
  written = n;
  return 1;
}

void TlsStream::release_input_if_drained() noexcept {
  // All taken by OpenSSL: the block goes back until bytes arrive again.
  if (!input_ || in_begin_ != in_end_) return;
  tls_buffers::give(std::exchange(input_, nullptr), tls_buffers::kInput);
  in_begin_ = in_end_ = 0;
}

asio::error_code TlsStream::failure(int ssl_error) const {
  asio::error_code ec;
  if (ssl_error == SSL_ERROR_ZERO_RETURN) {
    ec = asio::error::eof;  // close_notify: a clean end
  } else if (ssl_error == SSL_ERROR_SSL) {
    const unsigned long e = ERR_get_error();
    if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) ec = asio::ssl::error::stream_truncated;
    else ec = asio::error_code(static_cast<int>(e), asio::error::get_ssl_category());
  } else if (peer_closed_) {
    ec = asio::ssl::error::stream_truncated;
  } else {
    ec = asio::error::connection_aborted;  // SSL_ERROR_SYSCALL without a socket error: not expected
  }
  ERR_clear_error();
  return ec;
}

asio::awaitable<asio::error_code> TlsStream::fill_input(asio::ip::tcp::socket& socket) {
  if (!input_) {
    input_ = tls_buffers::take(tls_buffers::kInput);
    in_begin_ = in_end_ = 0;
  } else if (in_begin_ == in_end_) {
    in_begin_ = in_end_ = 0;
  } else if (in_end_ == tls_buffers::kInput) {
    std::memmove(input_, input_ + in_begin_, in_end_ - in_begin_);
    in_end_ -= std::exchange(in_begin_, 0);
  }
  auto [ec, n] = co_await socket.async_read_some(asio::buffer(input_ + in_end_, tls_buffers::kInput - in_end_), as_result);
  in_end_ += n;
  if (ec == asio::error::eof) {
    peer_closed_ = true;  // OpenSSL tells a close_notify from a truncation
    co_return asio::error_code{};
  }
  if (ec) release_input_if_drained();
  co_return ec;
}

asio::awaitable<asio::error_code> TlsStream::flush(asio::ip::tcp::socket& socket, bool until_sent) {
  // until_sent: the writer's and the handshake's way: return once every record is on the wire,
  // waiting for another coroutine's send first. Else (the reader's records: an alert, an answer
  // to a key update) one send at most, never waiting: a sender in progress sends them after its
  // own, so a reader is never held up by a writer's body.
  while (!broken_ && (out_end_ > 0 || (until_sent && flushing_))) {
    if (flushing_) {
      if (!until_sent) break;
      if (!flushed_) flushed_ = std::make_unique<asio::steady_timer>(socket.get_executor(), asio::steady_timer::time_point::max());
      co_await flushed_->async_wait(as_result);
      continue;
    }
    flushing_ = true;
    sending_ = std::exchange(output_, nullptr);
    const std::size_t size = std::exchange(out_end_, 0);
    auto [ec, n] = co_await asio::async_write(socket, asio::buffer(sending_, size), as_result);
    (void)n;
    tls_buffers::give(std::exchange(sending_, nullptr), tls_buffers::kOutput);
    flushing_ = false;
    if (ec) broken_ = ec;
    if (flushed_) flushed_->cancel();
    if (!until_sent) break;
  }
  co_return broken_;
}

asio::awaitable<asio::error_code> TlsStream::handshake(asio::ip::tcp::socket& socket, Role role) {
  if (role == Role::server) SSL_set_accept_state(ssl_);
  else SSL_set_connect_state(ssl_);
  for (;;) {
    clear_stale_errors();
    const int r = SSL_do_handshake(ssl_);
    const int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
    asio::error_code ec;
    if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) ec = failure(err);
    // Handshake messages, or the alert that ends a failed handshake (sent if the peer listens).
    if (has_output()) {
      const asio::error_code sent = co_await flush(socket, true);
      if (!ec) ec = sent;
    } else if (err == SSL_ERROR_WANT_WRITE) {
      ec = asio::error::no_buffer_space;  // the output block could not be allocated
    }
    if (ec) co_return ec;
    if (err == SSL_ERROR_NONE) {
      release_input_if_drained();  // a connection idle after its handshake holds no block
      co_return ec;
    }
    if (err == SSL_ERROR_WANT_READ) {
      if (peer_closed_) co_return asio::ssl::error::stream_truncated;
      if (const asio::error_code fec = co_await fill_input(socket)) co_return fec;
    }
  }
}

asio::awaitable<TlsStream::Result> TlsStream::read_some(asio::ip::tcp::socket& socket, asio::mutable_buffer b) {
  if (b.size() == 0) co_return Result{};
  for (;;) {
    clear_stale_errors();
    std::size_t n = 0;
    const int r = SSL_read_ex(ssl_, b.data(), b.size(), &n);
    const int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
    asio::error_code ec;
    if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) ec = failure(err);
    release_input_if_drained();
    // Reading can produce records too (an answer to a key update, an alert).
    // When OpenSSL wants room to write, wait until the block is sent (a writer's send first).
    if (has_output()) {
      const asio::error_code sent = co_await flush(socket, err == SSL_ERROR_WANT_WRITE);
      if (sent && err == SSL_ERROR_WANT_WRITE) co_return Result{sent, 0};
    } else if (err == SSL_ERROR_WANT_WRITE) {
      co_return Result{asio::error::no_buffer_space, 0};  // the output block could not be allocated
    }
    if (err == SSL_ERROR_NONE) co_return Result{asio::error_code{}, n};
    if (ec) co_return Result{ec, 0};
    if (err == SSL_ERROR_WANT_READ) {
      if (peer_closed_) co_return Result{asio::ssl::error::stream_truncated, 0};
      // Inline rather than fill_input(): one coroutine frame less on every read that waits.
      if (!input_) input_ = tls_buffers::take(tls_buffers::kInput);
      auto [rec, got] =
          co_await socket.async_read_some(asio::buffer(input_ + in_end_, tls_buffers::kInput - in_end_), as_result);
      in_end_ += got;
      if (rec == asio::error::eof) {
        peer_closed_ = true;
      } else if (rec) {
        release_input_if_drained();
        co_return Result{rec, 0};
      }
    }
  }
}

asio::error_code TlsStream::encrypt(std::span<const asio::const_buffer> many, Cursor& at) {
  // Record by record while the output block has room for a whole one, so OpenSSL never has to
  // stop half-way through a record.
  while (at.index < many.size() && out_end_ + kRecordRoom <= tls_buffers::kOutput) {
    // The record's plaintext: straight from the caller's buffer when it holds a full record (or
    // is the last piece), else small pieces gathered into one record.
    const char* data;
    std::size_t size;
    const std::size_t left = many[at.index].size() - at.offset;
    if (left >= kMaxPlain || at.index + 1 == many.size()) {
      data = static_cast<const char*>(many[at.index].data()) + at.offset;
      size = std::min(left, kMaxPlain);
      at.offset += size;
    } else {
      size = 0;
      while (at.index < many.size() && size < kMaxPlain) {
        const std::size_t take = std::min(many[at.index].size() - at.offset, kMaxPlain - size);
        std::memcpy(tls_staging + size, static_cast<const char*>(many[at.index].data()) + at.offset, take);
        size += take;
        at.offset += take;
        if (at.offset == many[at.index].size()) ++at.index, at.offset = 0;
      }
      data = tls_staging;
    }
    if (at.index < many.size() && at.offset == many[at.index].size()) ++at.index, at.offset = 0;
    if (size == 0) continue;
    clear_stale_errors();
    std::size_t written = 0;
    const int r = SSL_write_ex(ssl_, data, size, &written);
    if (r != 1) {
      const int err = SSL_get_error(ssl_, r);
      at.index = many.size();
      // WANT_WRITE means no room after all (or no memory for the block) and WANT_READ needs
      // renegotiation (disabled): either way the stream cannot go on.
      if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
        ERR_clear_error();
        return asio::error::no_buffer_space;
      }
      return failure(err);
    }
    at.plain += written;
  }
  return {};
}

asio::awaitable<TlsStream::Result> TlsStream::write(asio::ip::tcp::socket& socket, asio::const_buffer one,
                                                    std::span<const asio::const_buffer> many) {
  if (many.empty()) many = std::span<const asio::const_buffer>(&one, 1);
  Cursor at;
  asio::error_code failed;
  for (;;) {
    if (broken_) co_return Result{broken_, at.plain};
    if (!failed) failed = encrypt(many, at);
    // Send what is pending (also a failed write's alert, and records left by write_now()).
    if (out_end_ == 0) break;
    if (flushing_) {
      co_await flush(socket, true);  // another coroutine is sending: rare, in its own frame
      continue;
    }
    flushing_ = true;
    sending_ = std::exchange(output_, nullptr);
    auto [ec, n] = co_await asio::async_write(socket, asio::buffer(sending_, std::exchange(out_end_, 0)), as_result);
    (void)n;
    tls_buffers::give(std::exchange(sending_, nullptr), tls_buffers::kOutput);
    flushing_ = false;
    if (ec) broken_ = ec;
    if (flushed_) flushed_->cancel();
    if (failed) break;
  }
  co_return Result{failed, at.plain};
}

std::size_t TlsStream::write_now(asio::ip::tcp::socket& socket, std::span<const asio::const_buffer> many,
                                 asio::error_code& ec) {
  ec = {};
  if (flushing_ || broken_ || out_end_ > 0) return 0;
  Cursor at;
  if ((ec = encrypt(many, at))) return at.plain;
  if (out_end_ == 0) return at.plain;
  // Sockets are non-blocking for this (one ioctl per connection, then none).
  if (!socket.non_blocking()) socket.non_blocking(true, ec);
  std::size_t sent = 0;
  if (!ec) sent = socket.write_some(asio::buffer(output_, out_end_), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
  if (ec) {
    broken_ = ec;
    return at.plain;
  }
  if (sent == out_end_) {
    tls_buffers::give(std::exchange(output_, nullptr), tls_buffers::kOutput);
    out_end_ = 0;
  } else {
    std::memmove(output_, output_ + sent, out_end_ - sent);  // write() sends the rest
    out_end_ -= sent;
  }
  return at.plain;
}

}  // namespace gatehouse::detail
