// MintIdentityToken: hands the upstream a short-lived JWT, signed by the gateway, saying who called.
#pragma once
#include <memory>
#include <string>

#include "gatehouse/auth/token_minter.hpp"
#include "gatehouse/clock.hpp"
#include "gatehouse/middleware.hpp"
#include "gatehouse/route.hpp"

namespace gatehouse {

struct MintIdentityTokenOptions {
  /// Required.
  std::shared_ptr<const auth::TokenMinter> minter{};
  /// The request header that carries the token to the upstream. "authorization" sends
  /// "Bearer <token>" (and so replaces the client's credential); any other name the bare token.
  std::string header = "x-gatehouse-identity";
  /// Never null; tests pass a testing::FakeClock. Must outlive the middleware.
  const Clock* clock = &Clock::system();
};

/// Runs after Authenticate. On every request it first removes the header (whatever its case), so
/// that a client can never forge it, even when the request is not authenticated (Authenticate
/// with `optional`, or fail-open). When Authenticate stored auth::Claims in the exchange, it sets
/// the header to a token minted from them (see auth::TokenMinter); otherwise the request goes on
/// without one.
class MintIdentityToken final : public Middleware {
 public:
  /// Throws std::invalid_argument without a minter or with a header name that is no HTTP token.
  explicit MintIdentityToken(MintIdentityTokenOptions options);
  Flow on_request(Exchange& ex) const override;

  const MintIdentityTokenOptions& options() const noexcept { return options_; }

 private:
  MintIdentityTokenOptions options_;
  bool bearer_ = false;
};

/// A route handler that serves the minter's public keys: GET and HEAD answer 200 with the JWKS
/// (application/json, Cache-Control: max-age=300); other methods 405. Put it on an admin listener
/// (Route::listeners) at, say, /.well-known/jwks.json.
Handler jwks_handler(std::shared_ptr<const auth::TokenMinter> minter);

}  // namespace gatehouse
