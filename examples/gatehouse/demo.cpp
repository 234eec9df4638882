// The demo behind `gatehouse --demo`: everything on loopback, nothing to configure.
#include "demo.hpp"

#include <gatehouse/gatehouse.hpp>
#include <httplib.h>

#include <csignal>
#include <iostream>
#include <memory>
#include <thread>

#include "support/test_certs.hpp"  // a throw-away CA and certificate for the HTTPS listener

namespace gh = gatehouse;

namespace gatehouse_demo {
namespace {

// A small service that reports who it is and what the gateway told it about the request.
struct DemoService {
  explicit DemoService(std::string name) : name(std::move(name)) {
    server.Get(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      std::string body = "{\"service\":\"" + this->name + "\",\"path\":\"" + req.path + "\"";
      for (const char* h : {"x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded",
                            "x-auth-subject", "x-auth-scopes"})
        if (req.has_header(h)) body += std::string(",\"") + h + "\":\"" + escape(req.get_header_value(h)) + "\"";
      body += "}\n";
      res.set_content(body, "application/json");
    });
    server.Post(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      res.set_content("{\"service\":\"" + this->name + "\",\"received_bytes\":" + std::to_string(req.body.size()) + "}\n",
                      "application/json");
    });
    port = server.bind_to_any_port("127.0.0.1");
    if (port <= 0) throw std::runtime_error("demo: cannot bind a loopback port for " + this->name);
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~DemoService() {
    server.stop();
    if (thread.joinable()) thread.join();
  }
  static std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out;
  }
  std::string name;
  httplib::Server server;
  int port = 0;
  std::thread thread;
};

}  // namespace

int run_demo(const std::function<int(gh::Gateway&)>& run) {
  DemoService users("users"), orders("orders");
  gh::test::TestPki pki("gatehouse demo CA");
  const auto cert = pki.issue("localhost", {"localhost"}, {"127.0.0.1", "::1"});

  // A stand-in identity provider: it signs demo access tokens, and the gateway trusts its public keys.
  const gh::auth::TokenMinter idp({.issuer = "https://idp.demo", .audience = "orders",
                                   .lifetime = std::chrono::hours(1), .cache = false});
  auto token_for = [&idp](const char* user, const char* scope) {
    return idp.mint(gh::auth::Claims({{"sub", user}, {"scope", scope}}), std::chrono::system_clock::now());
  };
  gh::auth::JwtVerifierOptions jwt;
  jwt.algorithms = {"ES256"};
  jwt.issuers = {{"https://idp.demo", gh::auth::StaticKeySource::from_jwks(idp.jwks_json())}};
  jwt.audiences = {"orders"};
  gh::AuthenticateOptions authn;
  authn.verifiers = {std::make_shared<gh::auth::JwtVerifier>(std::move(jwt))};

  gh::Gateway gw{gh::GatewayOptions{.workers = 2}};
  gw.listen({.address = "127.0.0.1", .port = 8080});
  gw.listen({.address = "127.0.0.1", .port = 8443, .tls = gh::ServerTls{.certificates = {cert}}});
  gw.use<gh::AccessLog>();
  gw.use<gh::HeaderRewrite>(gh::HeaderRewriteOptions{.response = {.set = {{"x-served-by", "gatehouse"}}}});
  gw.route({.name = "health", .path = "/healthz", .prefix = false,
            .origin = [](gh::Exchange&) { return gh::Flow::respond(gh::Response(gh::Status::ok, "ok\n")); }});
  gw.route({.name = "users", .path = "/users",
            .origin = gh::Upstream::create({.name = "users", .endpoints = {"127.0.0.1:" + std::to_string(users.port)}})});
  gw.route({.name = "orders", .path = "/api/orders", .rewrite_prefix = "/orders",
            .middleware = {std::make_shared<gh::Authenticate>(authn),
                           std::make_shared<gh::Authorize>(gh::AuthorizeOptions{
                               .rule = gh::Rule::require_scopes({"orders:read"})})},
            .origin = gh::Upstream::create({.name = "orders", .endpoints = {"127.0.0.1:" + std::to_string(orders.port)}})});

  // The admin API, on loopback only: GET /metrics scrapes the gateway's registry; POST /drain
  // stops the demo as Ctrl-C does.
  gw.admin({.address = "127.0.0.1", .port = 9901,
            .metrics = [registry = gw.metrics()] { return registry->render_prometheus(); },
            .drain = [] { std::raise(SIGTERM); }});

  std::cerr << "gatehouse demo: services users on 127.0.0.1:" << users.port << ", orders on 127.0.0.1:" << orders.port
            << "\n\nTry, in another terminal:\n"
            << "  curl -i http://127.0.0.1:8080/users/42\n"
            << "  curl -i http://127.0.0.1:8080/api/orders/7          # 401: a bearer token is required\n"
            << "  curl -i -H 'Authorization: Bearer " << token_for("alice", "orders:read")
            << "' http://127.0.0.1:8080/api/orders/7   # verified; prefix rewritten to /orders/7\n"
            << "  curl -i -H 'Authorization: Bearer " << token_for("bob", "users:read")
            << "' http://127.0.0.1:8080/api/orders/7   # 403: lacks scope orders:read\n"
            << "  curl -i --cacert " << pki.ca_cert << " https://localhost:8443/users/42\n"
            << "  curl -i http://127.0.0.1:8080/healthz               # answered by the gateway\n"
            << "  curl -i http://127.0.0.1:8080/nowhere               # 404 with a request id\n"
            << "  curl -i -H 'X-Forwarded-For: 6.6.6.6' http://127.0.0.1:8080/users   # untrusted: replaced\n"
            << "  curl -i http://127.0.0.1:9901/readyz                # admin API (loopback): readiness\n"
            << "  curl -i http://127.0.0.1:9901/upstreams             # admin API: the upstreams\n"
            << "  curl -i http://127.0.0.1:9901/metrics               # admin API: Prometheus metrics\n"
            << "Access log lines appear below. Ctrl-C stops the gateway gracefully.\n\n";
  return run(gw);
}

}  // namespace gatehouse_demo
