// Authenticate + Authorize on a real route, in front of a cpp-httplib service.
#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "gatehouse/auth/jwt_verifier.hpp"
#include "integration/fixture.hpp"
#include "support/jwt_signer.hpp"
#include "support/httplib_server.hpp"
#include "support/raw_http.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

namespace {

struct Service {
  Service() {
    server.Get(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard l(mu);
      ++hits;
      subject = req.has_header("x-auth-subject") ? req.get_header_value("x-auth-subject") : "(none)";
      subjects = req.get_header_value_count("x-auth-subject");
      res.set_content("hello " + subject, "text/plain");
    });
    port = runner.start(server);
  }
  httplib::Server server;
  unsigned short port = 0;
  std::mutex mu;
  int hits = 0;
  std::size_t subjects = 0;
  std::string subject;
  ServerThread runner;  // last: stops the server before the members its handlers use
};

const std::string kIssuer = "https://id.test";

std::string mint(const TestKey& key, const std::string& sub, const std::string& scope) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  return make_token(key, {{"alg", "RS256"}, {"kid", "k1"}},
                    {{"iss", kIssuer}, {"aud", "orders"}, {"sub", sub}, {"exp", now + 300}, {"scope", scope}});
}

std::string get(unsigned short port, const std::string& extra_headers) {
  return exchange_raw(port, "GET /orders/7 HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n" + extra_headers + "\r\n");
}

}  // namespace

TEST_CASE("a protected route: valid tokens pass with the identity, others never reach the service") {
  const TestKey key = TestKey::generate("RS256");
  auth::JwtVerifierOptions vo;
  vo.algorithms = {"RS256"};
  vo.issuers = {{kIssuer, auth::StaticKeySource::from_jwks(key.jwks("k1").dump())}};
  vo.audiences = {"orders"};
  AuthenticateOptions ao;
  ao.verifiers = {std::make_shared<auth::JwtVerifier>(std::move(vo))};
  ao.realm = "orders";
  ao.logger = null_logger();  // keep test output quiet

  Service svc;
  GatewayUnderTest g;
  g.gw->route({.name = "orders",
               .path = "/orders",
               .middleware = {std::make_shared<Authenticate>(std::move(ao)),
                              std::make_shared<Authorize>(AuthorizeOptions{.rule = Rule::require_scopes({"orders:read"})})},
               .origin = upstream_at(svc.port)});
  const auto port = g.start();

  SUBCASE("valid token: 200 and the service sees who called, never a forged subject") {
    const std::string r = get(port, "Authorization: Bearer " + mint(key, "alice", "orders:read") +
                                        "\r\nX-Auth-Subject: mallory\r\nx-auth-subject: root\r\n");
    CHECK(status_of(r) == 200);
    CHECK(r.find("hello alice") != std::string::npos);
    std::lock_guard l(svc.mu);
    CHECK(svc.subject == "alice");
    CHECK(svc.subjects == 1);
  }
  SUBCASE("a client cannot make the gateway drop the identity it sets (Connection: x-auth-subject)") {
    const std::string r = get(port, "Authorization: Bearer " + mint(key, "alice", "orders:read") +
                                        "\r\nConnection: keep-alive, x-auth-subject\r\n");
    CHECK(status_of(r) == 200);
    std::lock_guard l(svc.mu);
    CHECK(svc.subject == "alice");
  }
  SUBCASE("no token: 401 with a challenge; a forged subject alone gets nowhere") {
    const std::string r = get(port, "X-Auth-Subject: alice\r\n");
    CHECK(status_of(r) == 401);
    CHECK(r.find("www-authenticate: Bearer realm=\"orders\"\r\n") != std::string::npos);
    std::lock_guard l(svc.mu);
    CHECK(svc.hits == 0);
  }
  SUBCASE("bad token: 401 invalid_token; missing scope: 403 insufficient_scope") {
    CHECK(status_of(get(port, "Authorization: Bearer e30.e30.AAAA\r\n")) == 401);
    const std::string r = get(port, "Authorization: Bearer " + mint(key, "bob", "profile") + "\r\n");
    CHECK(status_of(r) == 403);
    CHECK(r.find("error=\"insufficient_scope\", scope=\"orders:read\"") != std::string::npos);
    std::lock_guard l(svc.mu);
    CHECK(svc.hits == 0);
  }
}
