// A custom gateway: JWT authentication, then a rate limit per token subject (10 per second, bursts
// of 20) and one per client address, in front of two instances of a service, balanced by least
// request (power of two choices: the instance with fewer requests in flight gets the next one).
#include <gatehouse/auth/jwt_verifier.hpp>
#include <gatehouse/gatehouse.hpp>
#include <gatehouse/load_balancers.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

namespace gh = gatehouse;

int main(int argc, char** argv) {
  if (argc < 3) return 2;  // usage: rate_limited_api JWKS_FILE ISSUER
  gh::auth::JwtVerifierOptions jwt{.algorithms = {"RS256", "ES256"}};
  jwt.issuers = {{argv[2], gh::auth::StaticKeySource::from_file(argv[1])}};
  gh::AuthenticateOptions authn{.verifiers = {std::make_shared<gh::auth::JwtVerifier>(std::move(jwt))}};

  gh::RateLimitOptions limits{.headers = gh::RateLimitHeaders::all};
  limits.limits = {{.name = "per_subject", .requests = 10, .burst = 20, .key = {gh::RateLimitKeyPart::subject()}},
                   {.name = "per_client", .requests = 50, .key = {gh::RateLimitKeyPart::client_address()}}};

  gh::Gateway gw{gh::GatewayOptions{.workers = 2}};
  gw.listen({.address = "127.0.0.1", .port = 8080});
  gw.route({.name = "api", .path = "/api",
            .middleware = {std::make_shared<gh::Authenticate>(std::move(authn)),
                           std::make_shared<gh::RateLimiter>(std::move(limits))},
            .origin = gh::Upstream::create({.name = "api",
                                            .endpoints = {"127.0.0.1:9000", "127.0.0.1:9001"},
                                            .load_balancer = gh::least_request()})});
  gw.start();
  asio::io_context signals;
  asio::signal_set stop{signals, SIGINT, SIGTERM};
  stop.async_wait([&](auto, auto) { gw.stop(); });
  signals.run();
  gw.wait();
}
// try: python3 -m http.server 9000 --bind 127.0.0.1 & python3 -m http.server 9001 --bind 127.0.0.1 &
// try: ./build/examples/rate_limited_api jwks.json https://id.example.com
// try: for i in $(seq 25); do curl -s -o /dev/null -w '%{http_code} ' -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/; done
//      (20 x 200, then 429 with Retry-After and RateLimit fields; another subject is not affected)
