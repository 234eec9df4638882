// The request body read ahead of the origin (Exchange::read_request_body): what a middleware read
// is kept here, and the origin reads it back first, then the rest from the client, as if nothing
// had been read before.
#pragma once
#include <cstddef>
#include <string>

#include "core/body_stream.hpp"

namespace gatehouse::detail {

class RequestBodyBuffer final : public BodySource {
 public:
  /// `source`: the client's body, or null when the request has none.
  explicit RequestBodyBuffer(BodySource* source) noexcept : source_(source) {}

  /// What the origin should read: this buffer once something was read ahead, else the client's
  /// own source (no indirection for requests nobody buffered).
  BodySource* for_origin() noexcept { return filled_ ? this : source_; }

  /// Reads until `limit` bytes are held or the body ends.
  asio::awaitable<BufferedBody> fill(std::size_t limit);

  // BodySource: the held bytes as one piece, then the client's source.
  std::span<std::string_view> pieces() noexcept override;
  bool complete() const noexcept override { return source_->complete(); }
  std::int64_t length() const noexcept override { return source_->length(); }
  void consume() noexcept override;
  asio::awaitable<BodyRead> read_more() override { return source_->read_more(); }

 private:
  BufferedBody result(std::size_t limit) const noexcept;

  BodySource* source_;
  std::string held_;
  std::string_view piece_;
  unsigned failed_status_ = 0;
  bool filled_ = false;    // fill() took bytes from the source: the origin reads through us
  bool replayed_ = false;  // the origin has consumed held_
};

}  // namespace gatehouse::detail
