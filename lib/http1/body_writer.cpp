#include "http1/body_writer.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include "core/exchange_access.hpp"

namespace gatehouse::detail {
namespace {

// A cheap view of an array of buffers, as Asio wants a buffer sequence (copied by value).
struct BufferRange {
  using value_type = asio::const_buffer;
  using const_iterator = const asio::const_buffer*;
  const asio::const_buffer* first;
  const asio::const_buffer* last;
  const_iterator begin() const noexcept { return first; }
  const_iterator end() const noexcept { return last; }
};

}  // namespace

void Http1BodyWriter::count(std::size_t n) noexcept {
  bytes_ += n;
  if (count_for_) ExchangeAccess::add_bytes_sent(*count_for_, n);
}

std::size_t Http1BodyWriter::build(asio::const_buffer* out, char* chunk_header, std::span<const std::string_view> pieces,
                                   std::string_view tail, bool final_batch, bool last) const noexcept {
  std::size_t n = 0;
  // `out` may be raw storage: each entry is constructed, not assigned.
  auto push = [&](const void* data, std::size_t size) { ::new (&out[n++]) asio::const_buffer(data, size); };
  if (!head_.empty()) push(head_.data(), head_.size());
  if (framing_ == Framing::none) return n;  // no body: pieces are dropped
  std::size_t total = 0;
  for (std::string_view p : pieces) total += p.size();
  if (final_batch) total += tail.size();
  const bool chunked = framing_ == Framing::chunked;
  // A zero-size chunk would end the body: empty batches write no chunk at all.
  if (chunked && total > 0) {
    auto [p, ec] = std::to_chars(chunk_header, chunk_header + 16, total, 16);
    *p++ = '\r';
    *p++ = '\n';
    push(chunk_header, static_cast<std::size_t>(p - chunk_header));
  }
  for (std::string_view p : pieces)
    if (!p.empty()) push(p.data(), p.size());
  if (final_batch && !tail.empty()) push(tail.data(), tail.size());
  if (chunked && total > 0) push("\r\n", 2);
  if (chunked && final_batch && last) push("0\r\n\r\n", 5);
  return n;
}

BodySink::Now Http1BodyWriter::write_now(std::span<const std::string_view> pieces, std::string_view tail, bool last) {
  if (finished_) return Now::failed;
  if (pieces.size() > kMaxPiecesPerWrite) return Now::later;
  tcp::socket& socket = stream_->socket();
  asio::error_code ec;
  // Sockets are in non-blocking mode for this (one ioctl per connection, then none).
  if (!socket.non_blocking()) socket.non_blocking(true, ec);
  if (ec) return Now::later;
  Buffers out;
  char chunk_header[20];
  const std::size_t n = build(out.b, chunk_header, pieces, tail, true, last);
  std::size_t total = 0;
  for (std::size_t k = 0; k < n; ++k) total += out.b[k].size();
  std::size_t written = 0;
  if (stream_->is_tls()) {
    // Taken = encrypted; records the socket did not take yet go out with the next write().
    written = stream_->tls().write_now(socket, std::span<const asio::const_buffer>(out.b, n), ec);
    if (ec) return Now::failed;
    count(written);
    if (written < total || stream_->has_pending_output()) {
      skip_ = written;
      return Now::later;
    }
  } else if (total > 0) {
    written = socket.write_some(BufferRange{out.b, out.b + n}, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
    if (ec) return Now::failed;
    count(written);
  }
  if (written < total) {
    skip_ = written;  // write() goes on from here
    return Now::later;
  }
  head_ = {};
  if (last) finished_ = true;
  return Now::written;
}

asio::awaitable<bool> Http1BodyWriter::write(std::span<const std::string_view> pieces, std::string_view tail,
                                             bool last) {
  if (finished_) co_return false;
  Buffers out;
  char chunk_header[20];
  std::size_t i = 0;
  do {
    const std::size_t end = std::min(pieces.size(), i + kMaxPiecesPerWrite);
    const bool final_batch = end == pieces.size();
    const std::size_t n = build(out.b, chunk_header, pieces.subspan(i, end - i), tail, final_batch, last);
    head_ = {};
    i = end;
    // What write_now() already sent of these buffers is not sent again.
    std::size_t first = 0;
    for (std::size_t skip = std::exchange(skip_, 0); skip > 0 && first < n;) {
      if (out.b[first].size() <= skip) {
        skip -= out.b[first++].size();
      } else {
        out.b[first] += skip;
        skip = 0;
      }
    }
    // TLS records that write_now() encrypted but the socket did not take are sent first.
    if (first < n || stream_->has_pending_output()) {
      if (watchdog_) watchdog_->set_in(timeout_);
      // A TLS stream gathers small buffers into full records itself.
      auto [ec, written] = co_await stream_->write(BufferRange{out.b + first, out.b + n});
      count(written);
      if (ec) co_return false;
    }
  } while (i < pieces.size());
  if (last) finished_ = true;
  co_return true;
}

}  // namespace gatehouse::detail
