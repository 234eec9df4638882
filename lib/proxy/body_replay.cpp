#include "proxy/body_replay.hpp"

namespace gatehouse::detail {

void BodyReplay::keep(std::span<const std::string_view> pieces, std::string_view tail, bool last) {
  if (overflow_ || complete_) return;
  std::size_t n = tail.size();
  for (auto p : pieces) n += p.size();
  if (bytes_.size() + n > limit_) {
    // Too big to keep: this request cannot be sent again once its body went out.
    overflow_ = true;
    std::string().swap(bytes_);
    return;
  }
  for (auto p : pieces) bytes_.append(p);
  bytes_.append(tail);
  complete_ = last;
}

asio::awaitable<bool> BodyReplay::send(BodySink& sink) {
  const std::string_view body = bytes_;
  const std::span<const std::string_view> pieces(&body, body.empty() ? 0 : 1);
  const BodySink::Now now = sink.write_now(pieces, {}, true);
  if (now == BodySink::Now::written) co_return true;
  if (now == BodySink::Now::failed) co_return false;
  co_return co_await sink.write(pieces, {}, true);
}

asio::awaitable<bool> BodyReplay::Recorder::write(std::span<const std::string_view> pieces, std::string_view tail,
                                                   bool last) {
  replay_.keep(pieces, tail, last);
  co_return co_await inner_.write(pieces, tail, last);
}

BodySink::Now BodyReplay::Recorder::write_now(std::span<const std::string_view> pieces, std::string_view tail,
                                              bool last) {
  const Now now = inner_.write_now(pieces, tail, last);
  // `later` means write() follows with the same arguments: it keeps them then.
  if (now == Now::written) replay_.keep(pieces, tail, last);
  return now;
}

}  // namespace gatehouse::detail
