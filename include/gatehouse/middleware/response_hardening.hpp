// ResponseHardening: security headers on every answer, internals removed from upstream answers,
// and upstream 5xx bodies optionally replaced by the gateway's own JSON error.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "gatehouse/headers.hpp"
#include "gatehouse/middleware.hpp"

namespace gatehouse {

struct ResponseHardeningOptions {
  /// Strict-Transport-Security, sent on answers to TLS requests only (browsers ignore it over
  /// plain HTTP, RFC 6797). Empty: not sent.
  std::string strict_transport_security = "max-age=31536000; includeSubDomains";
  std::string content_type_options = "nosniff";  ///< X-Content-Type-Options; empty: not sent
  std::string frame_options = "DENY";            ///< X-Frame-Options; empty: not sent
  std::string referrer_policy = "no-referrer";   ///< Referrer-Policy; empty: not sent
  /// More headers to add ({"content-security-policy", "default-src 'none'"}, ...).
  std::vector<std::pair<std::string, std::string>> extra{};
  /// false: a header the upstream set itself is kept; true: the configured value replaces it.
  bool override_upstream = false;
  /// Response headers removed from every answer: they tell an attacker what runs behind the
  /// gateway. Names are case-insensitive.
  std::vector<std::string> remove{"server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version",
                                  "x-runtime", "x-generator"};
  /// true: an upstream's 5xx answer goes to the client as the gateway's own JSON error (same
  /// status, the request id, no upstream body: stack traces and internal names stay inside).
  bool replace_upstream_5xx = false;
};

class ResponseHardening final : public Middleware {
 public:
  /// Throws std::invalid_argument for a header name that is not a token or a value with CR, LF or
  /// NUL.
  explicit ResponseHardening(ResponseHardeningOptions options);
  Flow on_response(Exchange& ex) const override;
  const ResponseHardeningOptions& options() const noexcept { return options_; }

 private:
  void harden(Headers& h, bool secure) const;
  ResponseHardeningOptions options_;
  std::vector<std::pair<std::string, std::string>> added_;  // without HSTS, names lower-cased
};

}  // namespace gatehouse
