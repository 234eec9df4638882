// Request-body replay for retries: a copy of the body as it goes to the upstream (after the
// request-body hooks), kept up to a limit, so that a retry sends it again without the client. The
// hooks see the body once; every attempt sends the same bytes.
#pragma once
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "core/body_stream.hpp"

namespace gatehouse::detail {

class BodyReplay {
 public:
  explicit BodyReplay(std::size_t limit) noexcept : limit_(limit) {}
  /// The whole body was sent once and kept: it can be sent again.
  bool complete() const noexcept { return complete_ && !overflow_; }
  std::string_view bytes() const noexcept { return bytes_; }

  /// Sends the kept body through `sink` (which sends its pending head first). False when the
  /// peer did not take it.
  asio::awaitable<bool> send(BodySink& sink);

  /// Passes everything to the upstream's sink and keeps a copy.
  class Recorder final : public BodySink {
   public:
    Recorder(BodyReplay& replay, BodySink& inner) noexcept : replay_(replay), inner_(inner) {}
    asio::awaitable<bool> write(std::span<const std::string_view> pieces, std::string_view tail, bool last) override;
    Now write_now(std::span<const std::string_view> pieces, std::string_view tail, bool last) override;

   private:
    BodyReplay& replay_;
    BodySink& inner_;
  };

 private:
  void keep(std::span<const std::string_view> pieces, std::string_view tail, bool last);
  std::string bytes_;
  std::size_t limit_;
  bool complete_ = false;
  bool overflow_ = false;
};

}  // namespace gatehouse::detail
