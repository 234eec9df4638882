// Service isolation and internal identity tokens on real sockets: a public listener and an admin
// listener; the upstream (cpp-httplib) receives a token minted by the gateway and verifies it with
// the JWKS that only the admin listener serves.
#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/auth/key_source.hpp"
#include "integration/fixture.hpp"
#include "support/httplib_server.hpp"
#include "support/jwt_signer.hpp"
#include "support/raw_http.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using nlohmann::json;

namespace {

struct Service {
  Service() {
    server.Get(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard l(mu);
      identities.push_back(req.get_header_value_count("x-gatehouse-identity") == 1
                               ? req.get_header_value("x-gatehouse-identity")
                               : std::to_string(req.get_header_value_count("x-gatehouse-identity")) + " headers");
      res.set_content("service", "text/plain");
    });
    port = runner.start(server);
  }
  std::vector<std::string> seen() {
    std::lock_guard l(mu);
    return identities;
  }
  httplib::Server server;
  unsigned short port = 0;
  std::mutex mu;
  std::vector<std::string> identities;
  ServerThread runner;  // last: stops the server before the members its handlers use
};

std::string get(unsigned short port, const std::string& path, const std::string& extra_headers = {}) {
  return exchange_raw(port, "GET " + path + " HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n" + extra_headers + "\r\n");
}

}  // namespace

TEST_CASE("admin routes and the JWKS live on the admin listener; the upstream gets a verifiable identity") {
  const TestKey key = TestKey::generate("ES256");
  auth::JwtVerifierOptions vo;
  vo.algorithms = {"ES256"};
  vo.issuers = {{"https://id.test", auth::StaticKeySource::from_jwks(key.jwks("k1").dump())}};
  AuthenticateOptions ao;
  ao.verifiers = {std::make_shared<auth::JwtVerifier>(std::move(vo))};
  ao.optional = true;
  ao.logger = null_logger();
  const auto minter = std::make_shared<const auth::TokenMinter>(
      auth::TokenMinterOptions{.issuer = "https://gatehouse.internal", .audience = "orders", .lifetime = std::chrono::seconds(30)});

  Service svc;
  GatewayUnderTest g;
  g.gw->listen({.address = "127.0.0.1", .port = 0, .name = "public"});
  g.gw->listen({.address = "127.0.0.1", .port = 0, .name = "admin"});
  g.gw->route({.name = "orders", .path = "/orders",
               .middleware = {std::make_shared<Authenticate>(std::move(ao)),
                              std::make_shared<MintIdentityToken>(MintIdentityTokenOptions{.minter = minter})},
               .origin = upstream_at(svc.port)});
  g.gw->route({.name = "admin", .path = "/admin",
               .origin = [](Exchange&) { return Flow::respond(Response(Status::ok, "admin\n")); },
               .listeners = {"admin"}});
  g.gw->route({.name = "jwks", .path = "/.well-known/jwks.json", .prefix = false,
               .origin = jwks_handler(minter), .listeners = {"admin"}});
  g.gw->start();
  const auto endpoints = g.gw->local_endpoints();
  REQUIRE(endpoints.size() == 2);
  const unsigned short pub = endpoints[0].port(), admin = endpoints[1].port();

  // The admin routes do not exist on the public listener: 404, as for any unknown path.
  const std::string not_here = get(pub, "/admin");
  CHECK(status_of(not_here) == 404);
  CHECK(status_of(get(pub, "/nowhere")) == 404);
  CHECK(body_of(not_here).find("\"status\":404") != std::string::npos);
  CHECK(status_of(get(pub, "/.well-known/jwks.json")) == 404);
  const std::string admin_page = get(admin, "/admin/x");
  CHECK(status_of(admin_page) == 200);
  CHECK(body_of(admin_page) == "admin\n");

  const std::string jwks_response = get(admin, "/.well-known/jwks.json");
  REQUIRE(status_of(jwks_response) == 200);
  CHECK(lower(head_of(jwks_response)).find("cache-control: max-age=300") != std::string::npos);
  CHECK(lower(head_of(jwks_response)).find("content-type: application/json") != std::string::npos);
  const std::string jwks = body_of(jwks_response);
  CHECK(json::parse(jwks) == json::parse(minter->jwks_json()));

  // An authenticated caller: the service receives one identity token, and verifies it with the
  // JWKS fetched from the admin listener. Forged headers never get through.
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string token = make_token(key, {{"alg", "ES256"}, {"kid", "k1"}},
                                       {{"iss", "https://id.test"}, {"sub", "alice"}, {"scope", "orders:read"},
                                        {"exp", now + 300}});
  CHECK(status_of(get(pub, "/orders/1", "Authorization: Bearer " + token +
                                            "\r\nX-Gatehouse-Identity: forged\r\nx-gatehouse-identity: forged2\r\n")) == 200);
  CHECK(status_of(get(pub, "/orders/2", "X-Gatehouse-Identity: forged\r\n")) == 200);  // optional authentication
  CHECK(status_of(get(admin, "/orders/3", "Authorization: Bearer " + token + "\r\n")) == 200);  // served everywhere
  const auto seen = svc.seen();
  REQUIRE(seen.size() == 3);
  CHECK(seen[1] == "0 headers");

  auth::JwtVerifierOptions service;
  service.algorithms = {"ES256"};
  service.issuers = {{"https://gatehouse.internal", auth::StaticKeySource::from_jwks(jwks)}};
  service.audiences = {"orders"};
  const auth::JwtVerifier service_verifier(std::move(service));
  for (const std::size_t i : {std::size_t{0}, std::size_t{2}}) {
    CAPTURE(i);
    const auto r = service_verifier.try_verify_now(seen[i]);
    REQUIRE(r);
    REQUIRE(r->ok());
    CHECK(r->value().subject() == "alice");
    CHECK(r->value().scopes() == std::vector<std::string>{"orders:read"});
    CHECK(*r->value().integer("exp") - *r->value().integer("iat") == 30);
  }
  // The same verified token within half the lifetime, on the same worker: the same minted token.
  CHECK(seen[2] == seen[0]);
}

TEST_CASE("Gateway::start refuses a route bound to a listener that does not exist") {
  GatewayUnderTest g;
  g.gw->listen({.address = "127.0.0.1", .port = 0, .name = "admin"});
  g.gw->route({.path = "/admin", .origin = [](Exchange&) { return Flow::respond(Status::ok); }, .listeners = {"admn"}});
  CHECK_THROWS_WITH_AS(g.gw->start(), doctest::Contains("no listener is named \"admn\""), std::invalid_argument);
}
