// The request as the gateway received it from the client; middleware may change it before it is
// forwarded.
#pragma once
#include <string>
#include <string_view>

#include "gatehouse/headers.hpp"

namespace gatehouse {

namespace detail {
struct RequestAccess;
}

class Request {
 public:
  Request() = default;
  Request(std::string_view method, std::string_view target) : method_(method), target_(target) {}

  std::string_view method() const noexcept { return method_; }
  void set_method(std::string_view m) { method_.assign(m); }

  /// Request target in origin form, path and query: "/a/b?x=1".
  std::string_view target() const noexcept { return target_; }
  void set_target(std::string_view t) { target_.assign(t); }
  /// The path part of the target (before '?').
  std::string_view path() const noexcept;
  /// The query part of the target (after '?', without it); empty if none.
  std::string_view query() const noexcept;
  /// Replaces the path and keeps the query.
  void set_path(std::string_view path);

  /// Host from the Host header, without port; empty if absent.
  std::string_view host() const noexcept;

  /// HTTP minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
  int version_minor() const noexcept { return version_minor_; }
  void set_version_minor(int v) noexcept { version_minor_ = v; }

  Headers& headers() noexcept { return headers_; }
  const Headers& headers() const noexcept { return headers_; }

  /// Declared body length: Content-Length, or -1 for chunked, 0 if no body.
  long long content_length() const noexcept { return content_length_; }
  void set_content_length(long long n) noexcept { content_length_ = n; }
  bool has_body() const noexcept { return content_length_ != 0; }

 private:
  friend struct detail::RequestAccess;  // the parser fills the fields in place
  std::string method_;
  std::string target_;
  Headers headers_;
  int version_minor_ = 1;
  long long content_length_ = 0;
};

}  // namespace gatehouse
