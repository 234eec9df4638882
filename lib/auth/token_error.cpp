#include "gatehouse/auth/token_error.hpp"

#include <string>

namespace gatehouse::auth {
namespace {

class TokenCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "gatehouse.token"; }

  std::string message(int value) const override {
    switch (static_cast<TokenError>(value)) {
      case TokenError::malformed: return "malformed token";
      case TokenError::unsupported_algorithm: return "token algorithm not accepted";
      case TokenError::bad_signature: return "token signature is invalid";
      case TokenError::expired: return "token has expired";
      case TokenError::not_yet_valid: return "token is not valid yet";
      case TokenError::wrong_issuer: return "token issuer is not trusted";
      case TokenError::wrong_audience: return "token is not meant for this audience";
      case TokenError::missing_claim: return "token lacks a required claim";
      case TokenError::wrong_type: return "token type is not accepted";
      case TokenError::unknown_key: return "no key can verify the token";
      case TokenError::key_source_unavailable: return "verification keys are unavailable";
      case TokenError::token_too_large: return "token is too large";
      case TokenError::inactive: return "token is not active";
      case TokenError::forbidden_header: return "token header has a forbidden parameter";
      case TokenError::internal: return "internal error while verifying the token";
      case TokenError::introspection_unavailable: return "the introspection endpoint is unavailable";
    }
    return "unknown token error";
  }
};

}  // namespace

const std::error_category& token_category() noexcept {
  static const TokenCategory category;
  return category;
}

std::error_code make_error_code(TokenError e) noexcept {
  return {static_cast<int>(e), token_category()};
}

bool is_unavailable(std::error_code e) noexcept {
  return e == TokenError::key_source_unavailable || e == TokenError::internal ||
         e == TokenError::introspection_unavailable;
}

}  // namespace gatehouse::auth
