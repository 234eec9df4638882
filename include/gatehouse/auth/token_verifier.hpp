// TokenVerifier: turns a bearer token into verified claims (JWT locally, or introspection).
#pragma once
#include <optional>
#include <string_view>

#include <asio/awaitable.hpp>

#include "gatehouse/auth/claims.hpp"
#include "gatehouse/auth/result.hpp"
#include "gatehouse/auth/token_error.hpp"

namespace gatehouse::auth {

using VerifyResult = Result<Claims>;

/// One verifier serves all requests on all worker threads at once, hence const members.
class TokenVerifier {
 public:
  virtual ~TokenVerifier() = default;

  /// Verifies `token`, doing I/O if needed (fetching keys, asking an introspection endpoint). The
  /// token is copied before the coroutine starts, so the caller's buffer may go away; the verifier
  /// itself must outlive the returned awaitable.
  virtual asio::awaitable<VerifyResult> verify(std::string_view token) const = 0;

  /// The result when it is available without I/O (a cache hit, or keys at hand), std::nullopt when
  /// only verify() can decide. Lets a middleware skip the coroutine frame on the common path.
  virtual std::optional<VerifyResult> try_verify_now(std::string_view token) const {
    static_cast<void>(token);
    return std::nullopt;
  }
};

}  // namespace gatehouse::auth
