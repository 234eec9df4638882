// A JWT-protected route: tokens from one issuer, keys from a JWKS file, the "orders:read" scope
// required; the service on :9000 receives x-auth-subject and x-auth-scopes, never the token, plus
// x-gatehouse-identity: a 60 s JWT signed by the gateway, whose JWKS only the admin listener
// (127.0.0.1:9901) serves.
#include <gatehouse/auth/jwt_verifier.hpp>
#include <gatehouse/gatehouse.hpp>

#include <cstdio>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

namespace gh = gatehouse;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s JWKS_FILE ISSUER [BACKEND host:port]\n", argv[0]);
    return 2;
  }
  const std::string backend = argc > 3 ? argv[3] : "127.0.0.1:9000";

  gh::auth::JwtVerifierOptions verifier;
  verifier.algorithms = {"RS256", "ES256"};
  verifier.issuers = {{argv[2], gh::auth::StaticKeySource::from_file(argv[1])}};
  verifier.audiences = {"orders"};

  gh::AuthenticateOptions authn;
  authn.verifiers = {std::make_shared<gh::auth::JwtVerifier>(std::move(verifier))};
  authn.realm = "orders";
  authn.forward_token = false;  // the service trusts the gateway's identity headers instead

  // No key file: a new signing key at each start (services fetch the JWKS again).
  auto minter = std::make_shared<const gh::auth::TokenMinter>(
      gh::auth::TokenMinterOptions{.issuer = "https://gatehouse.internal", .audience = "orders"});

  gh::Gateway gw{gh::GatewayOptions{.workers = 2}};
  gw.listen({.address = "127.0.0.1", .port = 8080, .name = "public"});
  gw.listen({.address = "127.0.0.1", .port = 9901, .name = "admin"});
  gw.route({.name = "orders", .path = "/orders",
            .middleware = {std::make_shared<gh::Authenticate>(std::move(authn)),
                           std::make_shared<gh::Authorize>(gh::AuthorizeOptions{
                               .rule = gh::Rule::require_scopes({"orders:read"}), .realm = "orders"}),
                           std::make_shared<gh::MintIdentityToken>(gh::MintIdentityTokenOptions{.minter = minter})},
            .origin = gh::Upstream::create({.name = "orders", .endpoints = {backend}})});
  gw.route({.name = "jwks", .path = "/.well-known/jwks.json", .prefix = false,
            .origin = gh::jwks_handler(minter), .listeners = {"admin"}});
  gw.start();

  asio::io_context signals;
  asio::signal_set stop{signals, SIGINT, SIGTERM};
  stop.async_wait([&](auto, auto) { gw.stop(); });
  signals.run();
  gw.wait();
}
// try: python3 -m http.server 9000 --bind 127.0.0.1 &
// try: ./build/examples/jwt_gateway jwks.json https://id.example.com
// try: curl -i http://127.0.0.1:8080/orders/                          (401, WWW-Authenticate: Bearer)
// try: curl -i -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/orders/   (200, or 403 without orders:read)
// try: curl -i http://127.0.0.1:9901/.well-known/jwks.json            (the gateway's public key; 404 on :8080)
