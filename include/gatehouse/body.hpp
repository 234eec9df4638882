// One piece of a streamed message body.
#pragma once
#include <string_view>

namespace gatehouse {

/// A chunk of a request or response body as it passes through the gateway. It is never the whole
/// body unless the body fits in one read. `data` views the connection's buffer and is valid only
/// during the hook call. A middleware may point `data` at memory it owns (for example an Exchange
/// slot) to replace the chunk; that memory must stay valid until the next body hook call of the
/// same exchange (the gateway writes a replaced chunk out before it calls the hooks again). A body
/// framed by Content-Length must keep its length: a replacement of another size (or data added to
/// the last chunk) aborts the exchange rather than desynchronize the peer. Chunked bodies may
/// change size freely.
struct BodyChunk {
  std::string_view data{};
  bool last = false;  ///< true for the final chunk (which may be empty)
};

}  // namespace gatehouse

namespace gatehouse {

/// What Exchange::read_request_body read: the body's first bytes, kept by the gateway until the
/// exchange ends (the origin still receives the whole body, unchanged).
struct BufferedBody {
  std::string_view data{};  ///< the body, or its first `limit` bytes when it is longer
  bool complete = true;     ///< `data` is the whole body
  /// Nonzero when the body could not be read: the status the client deserves (400 malformed or
  /// the client went away, 408 too slow, 500 read_request_body called where it cannot read).
  unsigned failed_status = 0;
};

}  // namespace gatehouse
