#include "http1/parser.hpp"

#include <cstdint>
#include <cstring>

#include "core/exchange_access.hpp"
#include "util/text.hpp"

namespace gatehouse::detail {
namespace {
Http1Parser* self(llhttp_t* p) noexcept { return static_cast<Http1Parser*>(p->data); }
}  // namespace

// One callback table for every parser: llhttp only keeps a pointer to it.
const llhttp_settings_t* Http1Parser::settings() noexcept {
  static const llhttp_settings_t table = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = &Http1Parser::on_message_begin;
    s.on_url = &Http1Parser::on_url;
    s.on_status = &Http1Parser::on_status;
    s.on_header_field = &Http1Parser::on_header_field;
    s.on_header_field_complete = &Http1Parser::on_header_field_complete;
    s.on_header_value = &Http1Parser::on_header_value;
    s.on_header_value_complete = &Http1Parser::on_header_value_complete;
    s.on_headers_complete = &Http1Parser::on_headers_complete;
    s.on_body = &Http1Parser::on_body;
    s.on_message_complete = &Http1Parser::on_message_complete;
    return s;
  }();
  return &table;
}

Http1Parser::Http1Parser(Kind kind) {
  llhttp_init(&parser_, kind == Kind::request ? HTTP_REQUEST : HTTP_RESPONSE, settings());
  parser_.data = this;
}

void Http1Parser::reset_message_state() noexcept {
  body_.clear();
  head_bytes_ = header_count_ = 0;
  body_bytes_ = 0;
  content_length_ = -1;
  error_status_ = 0;
  error_reason_ = "";
  started_ = head_done_ = message_done_ = false;
  keep_alive_ = chunked_ = needs_eof_ = expect_continue_ = upgrade_ = false;
  last_was_value_ = false;
  name_bytes_ = 0;
  value_open_ = false;
}

void Http1Parser::start_request(Request* req, const ParseLimits& limits) {
  req_ = req;
  resp_ = nullptr;
  limits_ = limits;
  head_request_ = false;
  reset_message_state();
  // Resume after the pause at the previous message's end; llhttp keeps its state otherwise.
  if (llhttp_get_errno(&parser_) == HPE_PAUSED) llhttp_resume(&parser_);
}

void Http1Parser::reset() noexcept {
  llhttp_reset(&parser_);
}

void Http1Parser::start_response(Response* resp, const ParseLimits& limits, bool head_request) {
  resp_ = resp;
  req_ = nullptr;
  limits_ = limits;
  head_request_ = head_request;
  reset_message_state();
  if (llhttp_get_errno(&parser_) == HPE_PAUSED) llhttp_resume(&parser_);
}

int Http1Parser::fail(unsigned status, const char* reason) noexcept {
  error_status_ = status;
  error_reason_ = reason;
  return -1;
}

int Http1Parser::check_head_bytes(std::size_t more) noexcept {
  head_bytes_ += more;
  if (head_bytes_ > limits_.max_header_bytes) return fail(431, "header fields too large");
  return 0;
}

int Http1Parser::on_message_begin(llhttp_t* p) {
  Http1Parser* s = self(p);
  s->started_ = true;
  return 0;
}

int Http1Parser::on_url(llhttp_t* p, const char* at, std::size_t len) {
  Http1Parser* s = self(p);
  std::string& t = RequestAccess::target(*s->req_);
  if (t.size() + len > s->limits_.max_uri_bytes) return s->fail(414, "request target too long");
  t.append(at, len);
  // The target ends at the byte after it: a space before the version, or for an HTTP/0.9 request
  // line ("GET /" and CRLF) the line end. llhttp would then wait for a header block that an
  // HTTP/0.9 client never sends, so the request is refused here.
  if (at + len < s->feed_end_ && (at[len] == '\r' || at[len] == '\n'))
    return s->fail(400, "HTTP/0.9 request line");
  return 0;
}

int Http1Parser::on_status(llhttp_t* p, const char*, std::size_t len) {
  // The reason phrase is not forwarded (we send our own); only its size counts.
  return self(p)->check_head_bytes(len);
}

int Http1Parser::on_header_field(llhttp_t* p, const char* at, std::size_t len) {
  Http1Parser* s = self(p);
  s->name_bytes_ += len;
  if (s->head_done_) return s->check_head_bytes(len);  // trailer fields: counted, then dropped
  if (s->last_was_value_ || s->header_count_ == 0) {
    if (++s->header_count_ > s->limits_.max_header_count) return s->fail(431, "too many header fields");
    s->last_was_value_ = false;
  }
  if (int rc = s->check_head_bytes(len)) return rc;
  // llhttp keeps whitespace before the colon in the name; RFC 9112 5.1 requires a 400 for it.
  if (contains_byte(at, len, ' ', '\t', '\t')) return s->fail(400, "whitespace in header name");
  s->value_open_ = false;
  Headers& h = s->req_ ? s->req_->headers() : s->resp_->headers();
  h.append_name_piece({at, len});
  return 0;
}

int Http1Parser::on_header_field_complete(llhttp_t* p) {
  Http1Parser* s = self(p);
  // llhttp takes ": value" as a field with an empty name; RFC 9110 5.1 names are 1*tchar.
  if (s->name_bytes_ == 0) return s->fail(400, "empty header name");
  s->name_bytes_ = 0;
  return 0;
}

int Http1Parser::on_header_value(llhttp_t* p, const char* at, std::size_t len) {
  Http1Parser* s = self(p);
  if (s->head_done_) return s->check_head_bytes(len);
  s->last_was_value_ = true;
  if (int rc = s->check_head_bytes(len)) return rc;
  if (s->value_open_) {
    const bool contiguous = s->value_feed_id_ == s->feed_id_ ? at == s->value_end_ : s->value_end_ == s->prev_feed_end_;
    if (!contiguous) return s->fail(400, "obsolete line folding");
  }
  s->value_open_ = true;
  s->value_feed_id_ = s->feed_id_;
  s->value_end_ = at + len;
  // Values are re-serialized: a CR, LF (obs-fold) or NUL inside one would let a client inject
  // fields into the upstream request, so such a value is refused outright.
  if (contains_byte(at, len, '\r', '\n', '\0')) return s->fail(400, "invalid character in header value");
  Headers& h = s->req_ ? s->req_->headers() : s->resp_->headers();
  h.append_value_piece({at, len});
  return 0;
}

int Http1Parser::on_headers_complete(llhttp_t* p) {
  Http1Parser* s = self(p);
  Headers& h = s->req_ ? s->req_->headers() : s->resp_->headers();
  h.commit_field();
  s->head_done_ = true;
  s->major_ = p->http_major;
  s->minor_ = p->http_minor;
  if (s->major_ != 1) return s->fail(505, "unsupported HTTP version");
  s->keep_alive_ = llhttp_should_keep_alive(p) != 0;
  s->chunked_ = (p->flags & F_CHUNKED) != 0;
  s->upgrade_ = p->upgrade != 0;
  if (p->flags & F_CONTENT_LENGTH) s->content_length_ = static_cast<long long>(p->content_length);
  if (s->req_) {
    RequestAccess::method(*s->req_).assign(llhttp_method_name(static_cast<llhttp_method_t>(p->method)));
    s->req_->set_version_minor(s->minor_);
    s->req_->set_content_length(s->chunked_ ? -1 : (s->content_length_ > 0 ? s->content_length_ : 0));
    if (s->limits_.max_body_bytes && s->content_length_ > 0 &&
        static_cast<std::uint64_t>(s->content_length_) > s->limits_.max_body_bytes)
      return s->fail(413, "request body too large");
    if (auto e = h.get("expect")) {
      // Only 100-continue is defined; anything else must be refused (RFC 9110 10.1.1).
      if (iequals(*e, "100-continue")) s->expect_continue_ = true;
      else return s->fail(417, "unsupported expectation");
    }
    return 0;
  }
  s->resp_->set_status(static_cast<unsigned>(p->status_code));
  const unsigned status = p->status_code;
  // Responses without a body whatever their headers say (RFC 9112 6.3).
  if (s->head_request_ || status == 204 || status == 304 || (status >= 100 && status < 200)) return 1;
  s->needs_eof_ = !s->chunked_ && s->content_length_ < 0;
  return 0;
}

int Http1Parser::on_header_value_complete(llhttp_t* p) {
  self(p)->value_open_ = false;
  return 0;
}

int Http1Parser::on_body(llhttp_t* p, const char* at, std::size_t len) {
  Http1Parser* s = self(p);
  s->body_bytes_ += len;
  if (s->req_ && s->limits_.max_body_bytes && s->body_bytes_ > s->limits_.max_body_bytes)
    return s->fail(413, "request body too large");
  s->body_.emplace_back(at, len);
  return 0;
}

int Http1Parser::on_message_complete(llhttp_t* p) {
  Http1Parser* s = self(p);
  s->message_done_ = true;
  // Stop here: bytes that follow belong to the next (pipelined) message.
  return HPE_PAUSED;
}

Http1Parser::Result Http1Parser::feed(const char* data, std::size_t len) {
  Result r;
  const bool head_before = head_done_;
  ++feed_id_;
  prev_feed_end_ = feed_end_;
  feed_end_ = data + len;
  const llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  r.head_complete = head_done_ && !head_before;
  if (err == HPE_OK) {
    r.consumed = len;
  } else if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    // Paused at on_message_complete (an Upgrade request is forwarded as a plain request, since the
    // Upgrade header is hop-by-hop and removed).
    r.consumed = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data);
    if (err == HPE_PAUSED_UPGRADE) {
      message_done_ = true;
      llhttp_resume_after_upgrade(&parser_);
      llhttp_pause(&parser_);
    }
  } else {
    r.error = true;
    r.consumed = len;
    if (error_status_ == 0) {
      error_status_ = 400;
      error_reason_ = llhttp_get_error_reason(&parser_);
      if (!error_reason_) error_reason_ = "malformed message";
    }
  }
  r.message_complete = message_done_;
  return r;
}

Http1Parser::Result Http1Parser::finish() {
  Result r;
  if (!started_ || message_done_) return r;
  const llhttp_errno_t err = llhttp_finish(&parser_);
  if ((err == HPE_OK || err == HPE_PAUSED) && message_done_) {
    r.message_complete = true;
    return r;
  }
  r.error = true;
  error_status_ = 502;
  error_reason_ = "message cut short by connection close";
  return r;
}

}  // namespace gatehouse::detail
