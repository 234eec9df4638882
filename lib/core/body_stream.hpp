// Bodies as the pipeline moves them: a source of de-framed pieces (the client's request, an
// upstream's response), a sink that frames and writes them, and one pump between the two that runs
// the body hooks. Both directions and every protocol use the same pump.
#pragma once
#include <cstdint>
#include <span>
#include <string_view>

#include <asio/awaitable.hpp>

#include "gatehouse/body.hpp"

namespace gatehouse::detail {

/// How reading more of a body went.
struct BodyRead {
  enum class Kind : unsigned char { ok, closed, timed_out, malformed };
  Kind kind = Kind::ok;
  unsigned status = 0;          ///< malformed: the status the sender deserves (400, 413, 502)
  std::string_view reason{};    ///< malformed: why (static text)
  bool ok() const noexcept { return kind == Kind::ok; }
};

/// Body bytes from one side, already de-framed. The pieces view the source's own buffer and stay
/// valid until consume() or read_more(); a hook may point a piece elsewhere (see BodyChunk).
class BodySource {
 public:
  virtual ~BodySource() = default;
  /// Pieces available now (possibly none).
  virtual std::span<std::string_view> pieces() noexcept = 0;
  /// True when the available pieces end the body: no read_more() is needed.
  virtual bool complete() const noexcept = 0;
  /// The declared length (Content-Length), or -1 when the body ends otherwise (chunked, close).
  virtual std::int64_t length() const noexcept = 0;
  /// Done with the available pieces.
  virtual void consume() noexcept = 0;
  /// Waits for more pieces (or the end).
  virtual asio::awaitable<BodyRead> read_more() = 0;
};

/// Where body bytes go: frames them for its protocol and writes them, after any head it still
/// holds (so a head and the first pieces leave in one write). Empty pieces are skipped.
class BodySink {
 public:
  enum class Now : unsigned char { written, failed, later };
  virtual ~BodySink() = default;
  /// Writes `pieces` then `tail`; `last` ends the body. False when the peer cannot take it.
  virtual asio::awaitable<bool> write(std::span<const std::string_view> pieces, std::string_view tail,
                                      bool last) = 0;
  /// The same, without waiting, when the peer takes it all at once (the usual case on a fast
  /// connection, and the cheap one: no coroutine). `later`: finish with write() and the same
  /// arguments, which writes what this did not. The default always says `later`.
  virtual Now write_now(std::span<const std::string_view> pieces, std::string_view tail, bool last);
};


/// The body hooks of one direction for one exchange.
class BodyHooks {
 public:
  enum class Verdict : unsigned char { pass, answered, failed };
  virtual ~BodyHooks() = default;
  virtual Verdict run(BodyChunk& chunk) noexcept = 0;
};

struct PumpResult {
  enum class Stop : unsigned char {
    done,      ///< the whole body went through
    source,    ///< reading failed (see `read`)
    sink,      ///< writing failed
    answered,  ///< a request body hook answered (the answer is in the exchange)
    failed,    ///< a hook threw, or resized a body whose length was promised
  };
  Stop stop = Stop::done;
  BodyRead read{};
  bool ok() const noexcept { return stop == Stop::done; }
};

/// Moves the body from `source` to `sink` through `hooks`: every piece, then an empty last chunk.
/// A length-delimited body must keep its length: a hook that resizes it fails the pump.
asio::awaitable<PumpResult> pump_body(BodySource& source, BodySink& sink, BodyHooks& hooks);

}  // namespace gatehouse::detail
