// A response: from an upstream (headers, body streamed) or made by the gateway (body held here).
#pragma once
#include <string>
#include <string_view>

#include "gatehouse/headers.hpp"
#include "gatehouse/status.hpp"

namespace gatehouse {

class Response {
 public:
  Response() = default;
  explicit Response(Status s, std::string body = {}, std::string_view content_type = "text/plain")
      : status_(static_cast<unsigned>(s)), body_(std::move(body)) {
    if (!body_.empty()) headers_.set("content-type", content_type);
  }

  /// The status code, as a number (any code, not only those Status names); compares with Status
  /// too: `if (r.status() == gh::Status::not_found)`.
  unsigned status() const noexcept { return status_; }
  void set_status(unsigned s) noexcept { status_ = s; }
  void set_status(Status s) noexcept { status_ = static_cast<unsigned>(s); }

  Headers& headers() noexcept { return headers_; }
  const Headers& headers() const noexcept { return headers_; }

  /// Body of a response made by the gateway itself. For proxied responses the body streams
  /// through on_response_body and this stays empty.
  const std::string& body() const noexcept { return body_; }
  void set_body(std::string b, std::string_view content_type = "text/plain") {
    body_ = std::move(b);
    headers_.set("content-type", content_type);
  }
  /// Empties the body (and keeps the headers as they are).
  void clear_body() noexcept { body_.clear(); }

 private:
  unsigned status_ = 200;
  Headers headers_;
  std::string body_;
};

}  // namespace gatehouse
