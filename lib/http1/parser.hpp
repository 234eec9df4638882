// HTTP/1.x message parsing with llhttp in strict mode (LLHTTP_STRICT_MODE, no lenient flags), for
// requests from clients and responses from upstreams. Limits are enforced inside the callbacks,
// while bytes arrive, and so are the checks llhttp leaves to its user: whitespace before a colon,
// an empty field name, obs-fold, CR/LF/NUL in values, HTTP/0.9 request lines, HTTP versions other
// than 1.x, and Expect values other than 100-continue.
#pragma once
#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "gatehouse/request.hpp"
#include "gatehouse/response.hpp"

namespace gatehouse::detail {

struct ParseLimits {
  std::size_t max_uri_bytes = 8 * 1024;
  std::size_t max_header_bytes = 32 * 1024;
  std::size_t max_header_count = 100;
  std::uint64_t max_body_bytes = 0;  // 0: no limit
};

/// One parser per connection direction. feed() consumes bytes and reports what completed; body
/// pieces are views into the bytes given to feed() (already de-chunked) and stay valid as long as
/// those bytes do. The parser stops at the end of each message, so pipelined bytes that follow stay
/// unconsumed until the caller starts the next message.
class Http1Parser {
 public:
  enum class Kind { request, response };
  explicit Http1Parser(Kind kind);
  Http1Parser(const Http1Parser&) = delete;
  Http1Parser& operator=(const Http1Parser&) = delete;

  /// Prepares for the next request; fields are parsed into `req`.
  void start_request(Request* req, const ParseLimits& limits);
  /// Forgets where the previous message left llhttp (ended, failed or cut off): for a parser that
  /// moves to another connection.
  void reset() noexcept;
  /// Prepares for the next response; `head_request` means the response has no body whatever its
  /// headers say.
  void start_response(Response* resp, const ParseLimits& limits, bool head_request);

  struct Result {
    std::size_t consumed = 0;
    bool head_complete = false;     ///< the head was completed during this call
    bool message_complete = false;  ///< the whole message was completed during this call
    bool error = false;
  };
  Result feed(const char* data, std::size_t len);
  /// The peer closed the connection: completes a message delimited by EOF, or reports an error if
  /// a message was cut short.
  Result finish();

  /// Body pieces collected since the last clear_body().
  const std::vector<std::string_view>& body() const noexcept { return body_; }
  /// The same pieces, for a body hook to replace in place.
  std::span<std::string_view> body_pieces() noexcept { return body_; }
  void clear_body() noexcept { body_.clear(); }

  bool head_done() const noexcept { return head_done_; }
  bool in_message() const noexcept { return started_ && !message_done_; }
  /// After the head: whether the connection may be reused (HTTP version and Connection header).
  bool keep_alive() const noexcept { return keep_alive_; }
  bool chunked() const noexcept { return chunked_; }
  /// Content-Length from the head, -1 if absent.
  long long content_length() const noexcept { return content_length_; }
  /// A response whose end is marked by the connection closing.
  bool needs_eof() const noexcept { return needs_eof_; }
  bool expect_continue() const noexcept { return expect_continue_; }
  bool upgrade() const noexcept { return upgrade_; }
  int version_major() const noexcept { return major_; }
  int version_minor() const noexcept { return minor_; }
  std::uint64_t body_bytes() const noexcept { return body_bytes_; }

  /// On error: the status a client should get (400, 413, 414, 431, 505) and a short reason.
  unsigned error_status() const noexcept { return error_status_; }
  std::string_view error_reason() const noexcept { return error_reason_; }

 private:
  static int on_message_begin(llhttp_t*);
  static int on_url(llhttp_t*, const char*, std::size_t);
  static int on_status(llhttp_t*, const char*, std::size_t);
  static int on_header_field(llhttp_t*, const char*, std::size_t);
  static int on_header_field_complete(llhttp_t*);
  static int on_header_value(llhttp_t*, const char*, std::size_t);
  static int on_headers_complete(llhttp_t*);
  static int on_header_value_complete(llhttp_t*);
  static int on_body(llhttp_t*, const char*, std::size_t);
  static int on_message_complete(llhttp_t*);
  int fail(unsigned status, const char* reason) noexcept;
  int check_head_bytes(std::size_t more) noexcept;
  void reset_message_state() noexcept;

  static const llhttp_settings_t* settings() noexcept;

  llhttp_t parser_{};
  ParseLimits limits_;
  Request* req_ = nullptr;
  Response* resp_ = nullptr;
  std::vector<std::string_view> body_;
  std::size_t head_bytes_ = 0;
  std::size_t header_count_ = 0;
  std::uint64_t body_bytes_ = 0;
  long long content_length_ = -1;
  unsigned error_status_ = 0;
  const char* error_reason_ = "";
  int major_ = 1, minor_ = 1;
  bool head_request_ = false;
  bool started_ = false;
  bool head_done_ = false;
  bool message_done_ = false;
  bool keep_alive_ = false;
  bool chunked_ = false;
  bool needs_eof_ = false;
  bool expect_continue_ = false;
  bool upgrade_ = false;
  bool last_was_value_ = false;
  std::size_t name_bytes_ = 0;  // of the field name being parsed (an empty name is refused)
  // Obs-fold detection: llhttp hands a folded value over as pieces with the CRLF between them
  // skipped, so a continuation piece that does not start where the previous one ended is a fold.
  std::uint64_t feed_id_ = 0, value_feed_id_ = 0;
  const char* feed_end_ = nullptr;
  const char* prev_feed_end_ = nullptr;
  const char* value_end_ = nullptr;
  bool value_open_ = false;
};

}  // namespace gatehouse::detail
