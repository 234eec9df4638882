// The admin listener's token check: every request must carry the configured bearer token.
#pragma once
#include <array>
#include <string_view>

#include "gatehouse/middleware.hpp"

namespace gatehouse::detail {

/// Why `token` cannot be an admin token (too short, too long, not visible ASCII), or null when
/// it can. The message never quotes the token.
const char* admin_token_problem(std::string_view token) noexcept;

/// Answers 401 (WWW-Authenticate: Bearer) unless `Authorization: Bearer <token>` matches. Only a
/// SHA-256 digest of the token is kept; digests are compared in constant time, so neither the
/// time taken nor the length of the presented token tells how much of it was right.
class BearerTokenCheck final : public Middleware {
 public:
  /// `token` must pass admin_token_problem (std::invalid_argument otherwise).
  explicit BearerTokenCheck(std::string_view token);
  Flow on_request(Exchange& ex) const override;

 private:
  std::array<unsigned char, 32> digest_{};
};

}  // namespace gatehouse::detail
