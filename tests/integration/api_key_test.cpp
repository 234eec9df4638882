// API keys on real loopback sockets: a gateway built from a JSON configuration with an "api_keys"
// verifier and an x-api-key credential, in front of a cpp-httplib service.
#include <doctest/doctest.h>
#include <httplib.h>

#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/api_key_verifier.hpp"
#include "gatehouse/config.hpp"
#include "integration/fixture.hpp"
#include "support/httplib_server.hpp"
#include "support/raw_http.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using nlohmann::json;

namespace {

const std::string kKey = "gh_it_9d1f4a7c2e8b6035f1a2c3d4e5f60718";

struct Service {
  Service() {
    server.Get(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard l(mu);
      ++hits;
      subject = req.has_header("x-auth-subject") ? req.get_header_value("x-auth-subject") : "(none)";
      scopes = req.has_header("x-auth-scopes") ? req.get_header_value("x-auth-scopes") : "(none)";
      saw_key = req.has_header("x-api-key");
      res.set_content("hello " + subject, "text/plain");
    });
    port = runner.start(server);
  }
  httplib::Server server;
  unsigned short port = 0;
  std::mutex mu;
  int hits = 0;
  std::string subject, scopes;
  bool saw_key = false;
  ServerThread runner;  // last: stops the server before the members its handlers use
};

std::string get(unsigned short port, const std::string& extra_headers) {
  return exchange_raw(port, "GET /partners/orders HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n" + extra_headers +
                                "\r\n");
}

}  // namespace

TEST_CASE("api keys: the right key reaches the service with its identity, others get 401") {
  Service svc;
  const json doc = {
      {"workers", 1},
      {"listeners", {{{"address", "127.0.0.1"}, {"port", 0}}}},
      {"upstreams", {{"svc", {{"endpoints", {"127.0.0.1:" + std::to_string(svc.port)}}}}}},
      {"verifiers",
       {{"partners",
         {{"type", "api_keys"},
          {"keys", {{{"sha256", auth::ApiKeyVerifier::hash(kKey)}, {"principal", "partner-a"},
                     {"scopes", {"orders:read"}}, {"id", "partner-a-1"}}}}}}}},
      {"routes",
       {{{"name", "partners"},
         {"path", "/partners"},
         {"upstream", "svc"},
         {"middleware",
          {{{"name", "authenticate"},
            {"options", {{"verifiers", {"partners"}}, {"credential", {{"header", "x-api-key"}}}, {"forward_token", false}}}},
           {{"name", "authorize"}, {"options", {{"scopes", {"orders:read"}}}}}}}}}}};
  const GatewayConfig config = load_config(doc.dump());
  GatewayUnderTest g(config.options);  // stops the gateway whatever happens
  apply(config, *g.gw);
  g.gw->start();
  const unsigned short port = g.gw->local_endpoints().at(0).port();

  SUBCASE("right key: 200, x-auth-subject at the service, the key itself is not forwarded") {
    const std::string r = get(port, "X-Api-Key: " + kKey + "\r\nX-Auth-Subject: mallory\r\n");
    CHECK(status_of(r) == 200);
    CHECK(body_of(r) == "hello partner-a");
    std::lock_guard l(svc.mu);
    CHECK(svc.hits == 1);
    CHECK(svc.subject == "partner-a");
    CHECK(svc.scopes == "orders:read");
    CHECK_FALSE(svc.saw_key);
  }
  SUBCASE("right key with curl") {
    const auto res = run_command("timeout 30 curl -sS --noproxy '*' --max-time 20 -H 'x-api-key: " + kKey +
                                 "' -w ' %{http_code}' http://127.0.0.1:" + std::to_string(port) + "/partners/x");
    CHECK(res.exit_code == 0);
    CHECK(res.output == "hello partner-a 200");
  }
  SUBCASE("wrong key: 401 invalid_token, the service is never called") {
    const std::string r = get(port, "x-api-key: " + kKey.substr(0, kKey.size() - 1) + "9\r\n");
    CHECK(status_of(r) == 401);
    CHECK(lower(head_of(r)).find("www-authenticate: bearer realm=\"gatehouse\", error=\"invalid_token\"\r\n") !=
          std::string::npos);
    std::lock_guard l(svc.mu);
    CHECK(svc.hits == 0);
  }
  SUBCASE("no key: 401 with a plain challenge; a key in another header does not count") {
    const std::string r = get(port, "Authorization: Bearer " + kKey + "\r\n");
    CHECK(status_of(r) == 401);
    CHECK(lower(head_of(r)).find("www-authenticate: bearer realm=\"gatehouse\"\r\n") != std::string::npos);
    std::lock_guard l(svc.mu);
    CHECK(svc.hits == 0);
  }
}
