#include "gatehouse/middleware/mint_identity_token.hpp"

#include <stdexcept>
#include <string_view>
#include <utility>

#include "gatehouse/auth/claims.hpp"
#include "http1/token.hpp"

namespace gatehouse {
namespace {

using detail::is_http_token;

}  // namespace

MintIdentityToken::MintIdentityToken(MintIdentityTokenOptions options) : options_(std::move(options)) {
  if (!options_.minter) throw std::invalid_argument("MintIdentityToken: a minter is required");
  if (!options_.clock) throw std::invalid_argument("MintIdentityToken: the clock is null");
  if (!is_http_token(options_.header)) throw std::invalid_argument("MintIdentityToken: invalid header name");
  bearer_ = iequals(options_.header, "authorization");
}

Flow MintIdentityToken::on_request(Exchange& ex) const {
  Headers& h = ex.request().headers();
  h.remove(options_.header);  // whatever the client sent under this name never reaches the service
  const auth::Claims* claims = ex.find<auth::Claims>();
  if (!claims) return Flow::next();
  std::string token = options_.minter->mint(*claims, options_.clock->now());
  if (bearer_) token.insert(0, "Bearer ");
  h.set(options_.header, token);
  return Flow::next();
}

Handler jwks_handler(std::shared_ptr<const auth::TokenMinter> minter) {
  if (!minter) throw std::invalid_argument("jwks_handler: the minter is null");
  return [minter = std::move(minter)](Exchange& ex) {
    const std::string_view method = ex.request().method();
    if (method != "GET" && method != "HEAD") {
      Flow f = Flow::respond(Status::method_not_allowed);
      f.response().headers().set("allow", "GET, HEAD");
      return f;
    }
    Response r(Status::ok, minter->jwks_json(), "application/json");
    r.headers().set("cache-control", "max-age=300");
    return Flow::respond(std::move(r));
  };
}

}  // namespace gatehouse
