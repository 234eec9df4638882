#include "core/request_body_buffer.hpp"

#include <algorithm>

namespace gatehouse::detail {

BufferedBody RequestBodyBuffer::result(std::size_t limit) const noexcept {
  BufferedBody r;
  r.data = std::string_view(held_).substr(0, std::min(limit, held_.size()));
  r.complete = (!source_ || source_->complete()) && held_.size() <= limit;
  r.failed_status = failed_status_;
  if (failed_status_) r.complete = false;
  return r;
}

asio::awaitable<BufferedBody> RequestBodyBuffer::fill(std::size_t limit) {
  if (!source_ || failed_status_ || replayed_) co_return result(limit);
  filled_ = true;
  for (;;) {
    for (std::string_view piece : source_->pieces()) held_.append(piece);
    source_->consume();
    if (source_->complete() || held_.size() > limit) break;
    const BodyRead r = co_await source_->read_more();
    if (!r.ok()) {
      failed_status_ = r.kind == BodyRead::Kind::timed_out ? 408u : r.kind == BodyRead::Kind::malformed ? r.status : 400u;
      if (failed_status_ == 0) failed_status_ = 400;
      break;
    }
  }
  co_return result(limit);
}

std::span<std::string_view> RequestBodyBuffer::pieces() noexcept {
  if (!replayed_ && !held_.empty()) {
    piece_ = held_;
    return {&piece_, 1};
  }
  return source_->pieces();
}

void RequestBodyBuffer::consume() noexcept {
  if (!replayed_) {
    replayed_ = true;  // the held piece is taken; the source's own pieces were consumed by fill()
    if (!held_.empty()) return;
  }
  source_->consume();
}

}  // namespace gatehouse::detail
