#include "http1/body_writer.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include "core/exchange_access.hpp"

namespace gatehouse::detail {
namespace {

constexpr std::size_t kMaxPiecesPerWrite = 32;
// head + chunk header + pieces + tail + chunk end + last chunk
constexpr std::size_t kMaxBuffers = kMaxPiecesPerWrite + 5;

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

asio::awaitable<bool> Http1BodyWriter::send_tls(std::span<const asio::const_buffer> buffers) {
  // TLS writes one record per buffer: coalesce into records of up to 16 KiB first.
  if (buffers.size() == 1) {
    auto [ec, n] = co_await stream_->write(buffers[0]);
    count(n);
    co_return !ec;
  }
  PooledBuffer scratch(*buffers_);
  std::size_t index = 0, offset = 0;
  while (index < buffers.size()) {
    std::size_t filled = 0;
    while (index < buffers.size() && filled < scratch.size()) {
      const auto& b = buffers[index];
      const std::size_t take = std::min(b.size() - offset, scratch.size() - filled);
      std::memcpy(scratch.data() + filled, static_cast<const char*>(b.data()) + offset, take);
      filled += take;
      offset += take;
      if (offset == b.size()) ++index, offset = 0;
    }
    if (filled == 0) break;
    auto [ec, n] = co_await stream_->write(asio::const_buffer(scratch.data(), filled));
    count(n);
    if (ec) co_return false;
  }
  co_return true;
}

asio::awaitable<bool> Http1BodyWriter::write(std::span<const std::string_view> pieces, std::string_view tail,
                                             bool last) {
  if (finished_) co_return false;
  // Left uninitialized: only the first n entries are ever read.
  union Buffers {
    Buffers() noexcept {}
    asio::const_buffer b[kMaxBuffers];
  } out;
  std::size_t n = 0;
  auto push = [&](const void* data, std::size_t size) { ::new (&out.b[n++]) asio::const_buffer(data, size); };
  char chunk_header[20];
  std::size_t i = 0;
  do {
    n = 0;
    if (!head_.empty()) push(head_.data(), head_.size());
    head_ = {};
    const std::size_t end = std::min(pieces.size(), i + kMaxPiecesPerWrite);
    const bool final_batch = end == pieces.size();
    if (framing_ != Framing::none) {
      std::size_t total = 0;
      for (std::size_t k = i; k < end; ++k) total += pieces[k].size();
      if (final_batch) total += tail.size();
      const bool chunked = framing_ == Framing::chunked;
      // A zero-size chunk would end the body: empty batches write no chunk at all.
      if (chunked && total > 0) {
        auto [p, ec] = std::to_chars(chunk_header, chunk_header + 16, total, 16);
        *p++ = '\r';
        *p++ = '\n';
        push(chunk_header, static_cast<std::size_t>(p - chunk_header));
      }
      for (std::size_t k = i; k < end; ++k)
        if (!pieces[k].empty()) push(pieces[k].data(), pieces[k].size());
      if (final_batch && !tail.empty()) push(tail.data(), tail.size());
      if (chunked && total > 0) push("\r\n", 2);
      if (chunked && final_batch && last) push("0\r\n\r\n", 5);
    }
    i = end;
    if (n > 0) {
      if (watchdog_) watchdog_->set_in(timeout_);
      if (stream_->is_tls()) {
        if (!co_await send_tls(std::span<const asio::const_buffer>(out.b, n))) co_return false;
      } else {
        auto [ec, written] = co_await stream_->write(BufferRange{out.b, out.b + n});
        count(written);
        if (ec) co_return false;
      }
    }
  } while (i < pieces.size());
  if (last) finished_ = true;
  co_return true;
}

}  // namespace gatehouse::detail
