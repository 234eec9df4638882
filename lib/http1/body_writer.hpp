// Writes an HTTP/1 message: a serialized head, then body pieces framed by Content-Length (as they
// are), chunked encoding, or nothing (no body). The head leaves with the first pieces in one write,
// and each call is one gathered write (TLS: coalesced into as few records as possible).
#pragma once
#include <chrono>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/body_stream.hpp"
#include "gatehouse/exchange.hpp"
#include "http1/serializer.hpp"
#include "net/stream.hpp"
#include "net/watchdog.hpp"

namespace gatehouse::detail {

class Http1BodyWriter final : public BodySink {
 public:
  explicit Http1BodyWriter(Stream& stream) noexcept : stream_(&stream) {}
  /// Starts a message. `head` must stay valid until the first write. Before each write the
  /// watchdog (if any) gets a deadline of `timeout` from then. Bytes written are added to
  /// `count_for` (if any), as bytes sent to the client.
  void start(std::string_view head, Framing framing, Watchdog* watchdog, std::chrono::milliseconds timeout,
             Exchange* count_for = nullptr) noexcept {
    head_ = head;
    framing_ = framing;
    watchdog_ = watchdog;
    timeout_ = timeout;
    count_for_ = count_for;
    skip_ = 0;
    finished_ = false;
  }
  asio::awaitable<bool> write(std::span<const std::string_view> pieces, std::string_view tail, bool last) override;
  /// One non-blocking gathered send (TLS: encrypted first); whatever the socket did not take,
  /// write() sends.
  Now write_now(std::span<const std::string_view> pieces, std::string_view tail, bool last) override;
  /// True once the message's end was written.
  bool finished() const noexcept { return finished_; }
  /// Bytes written since construction (heads, framing and bodies).
  std::uint64_t bytes_written() const noexcept { return bytes_; }

 private:
  static constexpr std::size_t kMaxPiecesPerWrite = 32;
  // head + chunk header + pieces + tail + chunk end + last chunk
  static constexpr std::size_t kMaxBuffers = kMaxPiecesPerWrite + 5;
  // Left uninitialized: only the first n entries are ever read.
  union Buffers {
    Buffers() noexcept {}
    asio::const_buffer b[kMaxBuffers];
  };
  /// The buffers of one write: the pending head, then `pieces` framed (and, in the final batch,
  /// `tail` and the end of the body). Returns how many.
  std::size_t build(asio::const_buffer* out, char* chunk_header, std::span<const std::string_view> pieces,
                    std::string_view tail, bool final_batch, bool last) const noexcept;
  void count(std::size_t n) noexcept;

  Stream* stream_;
  Watchdog* watchdog_ = nullptr;
  Exchange* count_for_ = nullptr;
  std::chrono::milliseconds timeout_{0};
  std::string_view head_{};
  std::uint64_t bytes_ = 0;
  std::size_t skip_ = 0;  // bytes of the next write() that write_now() already sent
  Framing framing_ = Framing::none;
  bool finished_ = false;
};

}  // namespace gatehouse::detail
