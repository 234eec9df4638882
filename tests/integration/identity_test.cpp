// Service identity and IP filtering end to end on loopback: client certificates (curl --cert and
// openssl s_client) authorized by their SPIFFE ID per route, the identity forwarded to a real
// upstream in a header clients cannot forge, revoked (CRL) and over-long chains refused with
// client_certificate_rejected events; listener-level IP deny before TLS, and a route's deny file
// edited while the gateway runs. Certificates come from TestPki, generated here.
#include <httplib.h>

#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <gatehouse/testing.hpp>

#include "integration/fixture.hpp"
#include "support/httplib_server.hpp"
#include "support/raw_http.hpp"
#include "support/temp_dir.hpp"
#include "support/test_certs.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

namespace {

// An upstream that answers with the identity header it received and the forwarded-for chain.
struct EchoService {
  EchoService() {
    server.Get(R"(/.*)", [](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Server", "Werkzeug/2.2.2 Python/3.11");
      res.set_header("X-Powered-By", "Express");
      if (req.path == "/crash") {
        res.status = 500;
        res.set_content("Traceback: psycopg2.OperationalError at db-primary-3:5432", "text/plain");
        return;
      }
      res.set_content("path=" + req.path + " spiffe=" + req.get_header_value("x-client-spiffe-id") +
                          " count=" + std::to_string(req.get_header_value_count("x-client-spiffe-id")),
                      "text/plain");
    });
    port = runner.start(server);
  }
  httplib::Server server;
  unsigned short port = 0;
  ServerThread runner;  // last: stops the server before the rest goes
};

std::string curl(unsigned short port, const TestPki& pki, const CertificateFiles* client, const std::string& path,
                 const std::string& extra = {}) {
  const std::string p = std::to_string(port);
  std::string cmd = "timeout 20 curl -sS --noproxy '*' --max-time 10 --cacert " + pki.ca_cert + " --resolve localhost:" + p +
                    ":127.0.0.1 -w ' %{http_code}' " + extra + " ";
  if (client) cmd += "--cert " + client->cert_file + " --key " + client->key_file + " ";
  return run_command(cmd + "https://localhost:" + p + path).output;
}

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

const SecurityEvent* find_event(const std::vector<SecurityEvent>& events, SecurityEventKind kind,
                                std::string_view reason) {
  for (const auto& e : events)
    if (e.kind == kind && e.reason.find(reason) != std::string::npos) return &e;
  return nullptr;
}

}  // namespace

TEST_CASE("mTLS identity: SPIFFE IDs authorize per route, the identity reaches the upstream unforged") {
  TestPki pki;
  const auto server = pki.issue("localhost", {"localhost"});
  const auto billing = pki.issue_client("billing", {.uris = {"spiffe://corp/ns/billing/sa/api"}});
  const auto web = pki.issue_client("web", {.uris = {"spiffe://corp/ns/web/sa/frontend"}});
  const auto revoked = pki.issue_client("revoked", {.uris = {"spiffe://corp/ns/billing/sa/api"}});
  auto intermediate = pki.intermediate("ops intermediate CA");
  const auto deep = intermediate->issue_client("deep", {.uris = {"spiffe://corp/ns/billing/sa/api"}});
  const std::string crl = pki.write_crl({revoked});
  const std::string intermediate_crl = intermediate->write_crl({});

  EchoService svc;
  testing::EventRecorder recorder;
  GatewayUnderTest g({.security_events = recorder.security_events()});
  g.gw->use<ClientIdentityHeaders>(ClientIdentityHeadersOptions{});
  g.gw->use<ResponseHardening>(ResponseHardeningOptions{.replace_upstream_5xx = true});
  g.gw->route({.name = "payments", .path = "/internal/payments",
               .middleware = {std::make_shared<const Authorize>(
                   AuthorizeOptions{.rule = Rule::spiffe_id_in({"spiffe://corp/ns/billing/sa/api"})})},
               .origin = upstream_at(svc.port)});
  g.gw->route({.name = "public", .path = "/", .origin = upstream_at(svc.port)});
  // No intermediate allowed between a client certificate and the CA.
  const auto port = g.start(ServerTls{.certificates = {server},
                                      .client_ca_file = pki.ca_cert,
                                      .crl_files = {crl, intermediate_crl},
                                      .max_chain_depth = 0});

  // The billing service may call payments; the upstream sees its SPIFFE ID once, not the forged one.
  std::string out = curl(port, pki, &billing, "/internal/payments", "-H 'X-Client-SPIFFE-ID: spiffe://corp/ns/admin'");
  CHECK(out == "path=/internal/payments spiffe=spiffe://corp/ns/billing/sa/api count=1 200");
  // The web frontend may not, but reaches the public route as itself.
  out = curl(port, pki, &web, "/internal/payments");
  CHECK(out.ends_with(" 403"));
  out = curl(port, pki, &web, "/hello");
  CHECK(out == "path=/hello spiffe=spiffe://corp/ns/web/sa/frontend count=1 200");

  // Hardened answers: no server internals, security headers, the upstream's 5xx body replaced.
  out = curl(port, pki, &web, "/crash", "-i");
  CHECK(out.find("HTTP/1.1 500") != std::string::npos);
  CHECK(out.find("Traceback") == std::string::npos);
  CHECK(out.find("Werkzeug") == std::string::npos);
  CHECK(out.find("Express") == std::string::npos);
  CHECK(out.find("strict-transport-security: max-age=31536000") != std::string::npos);
  CHECK(out.find("x-content-type-options: nosniff") != std::string::npos);

  // openssl s_client, a second independent client, gets the same answer.
  const auto s = run_command("printf 'GET /internal/payments HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | "
                             "timeout 10 openssl s_client -quiet -connect 127.0.0.1:" + std::to_string(port) +
                             " -servername localhost -CAfile " + pki.ca_cert + " -cert " + billing.cert_file + " -key " +
                             billing.key_file + " 2>&1");
  CHECK(s.output.find("HTTP/1.1 200") != std::string::npos);
  CHECK(s.output.find("spiffe=spiffe://corp/ns/billing/sa/api") != std::string::npos);

  // Revoked, and signed through an intermediate that the depth limit does not allow: refused in
  // the handshake, with the reason in a client_certificate_rejected event.
  out = curl(port, pki, &revoked, "/hello");
  CHECK(out.find("path=") == std::string::npos);
  out = curl(port, pki, &deep, "/hello");
  CHECK(out.find("path=") == std::string::npos);
  // TLS 1.2: the server checks the certificate inside the handshake, so the alert always arrives.
  const auto r = run_command("timeout 10 openssl s_client -tls1_2 -connect 127.0.0.1:" + std::to_string(port) +
                             " -CAfile " + pki.ca_cert + " -cert " + revoked.cert_file + " -key " + revoked.key_file +
                             " </dev/null 2>&1");
  CHECK(r.output.find("certificate revoked") != std::string::npos);

  std::vector<SecurityEvent> events;
  CHECK(wait_for([&] {
    events = recorder.events();
    return find_event(events, SecurityEventKind::client_certificate_rejected, "revoked") &&
           find_event(events, SecurityEventKind::client_certificate_rejected, "chain too long");
  }));
  const SecurityEvent* denied = find_event(events, SecurityEventKind::authorization_denied, "");
  REQUIRE(denied);
  CHECK(denied->route == "payments");

  const std::string metrics = g.gw->metrics()->render_prometheus();
  CHECK(metrics.find("result=\"rejected\"} 3") != std::string::npos);
  CHECK(metrics.find("result=\"verified\"} 5") != std::string::npos);

  // With one intermediate allowed, the same chain verifies.
  GatewayUnderTest g2;
  g2.gw->route({.path = "/", .origin = upstream_at(svc.port)});
  const auto port2 = g2.start(ServerTls{.certificates = {server},
                                        .client_ca_file = pki.ca_cert,
                                        .crl_files = {crl, intermediate_crl},
                                        .max_chain_depth = 1});
  CHECK(curl(port2, pki, &deep, "/x").ends_with(" 200"));
  CHECK(curl(port2, pki, &revoked, "/x").find("path=") == std::string::npos);
}

TEST_CASE("ip filter: a listener's deny list closes the connection before TLS") {
  TestPki pki;
  const auto server = pki.issue("localhost", {"localhost"});
  testing::EventRecorder recorder;
  GatewayUnderTest g({.security_events = recorder.security_events()});
  g.gw->route({.path = "/", .origin = [](Exchange&) { return Flow::respond(Response(Status::ok, "in")); }});
  g.gw->listen({.address = "127.0.0.1", .port = 0, .tls = ServerTls{.certificates = {server}},
                .name = "edge", .ip_filter = std::make_shared<const IpFilter>(IpFilterOptions{.name = "edge-deny", .deny = {"127.0.0.0/8"}})});
  g.gw->listen({.address = "127.0.0.1", .port = 0, .name = "open",
                .ip_filter = std::make_shared<const IpFilter>(IpFilterOptions{.name = "edge-allow", .allow = {"127.0.0.1"}})});
  g.gw->start();
  const auto denied_port = g.gw->local_endpoints().at(0).port();
  const auto open_port = g.gw->local_endpoints().at(1).port();

  // No certificate is ever sent: the handshake does not start.
  const auto r = run_command("timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(denied_port) +
                             " </dev/null 2>&1");
  CHECK(r.output.find("BEGIN CERTIFICATE") == std::string::npos);
  CHECK(r.output.find("subject=") == std::string::npos);
  // Plain bytes get no answer either: the socket is closed.
  const int fd = connect_loopback(denied_port);
  const UntilClose closed = read_until_close(fd, 3s);
  ::close(fd);
  CHECK(closed.closed);
  CHECK(closed.bytes.empty());

  CHECK(status_of(exchange_raw(open_port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")) == 200);

  std::vector<SecurityEvent> events;
  CHECK(wait_for([&] {
    events = recorder.events();
    return events.size() >= 2;
  }));
  REQUIRE(!events.empty());
  CHECK(events[0].kind == SecurityEventKind::ip_filtered);
  CHECK(events[0].rule_name == "edge-deny");
  CHECK(events[0].reason == "address in the deny list");
  const std::string metrics = g.gw->metrics()->render_prometheus();
  CHECK(metrics.find("gatehouse_ip_filter_total{filter=\"edge-deny\",verdict=\"deny_listed\"} 2") != std::string::npos);
  CHECK(metrics.find("gatehouse_ip_filter_total{filter=\"edge-allow\",verdict=\"allow_listed\"} 1") != std::string::npos);
}

TEST_CASE("ip filter: a route filters the real client behind a trusted proxy, from a file edited at run time") {
  TempDir tmp;
  const std::string deny_file = tmp.file("deny.txt", "# abusers\n203.0.113.0/24\n");
  GatewayUnderTest g({.trusted_proxies = {"127.0.0.1/32"}});
  g.gw->route({.path = "/",
               .middleware = {std::make_shared<const IpFilter>(
                   IpFilterOptions{.deny_file = deny_file, .file_check_interval = 50ms})},
               .origin = [](Exchange&) { return Flow::respond(Response(Status::ok, "in")); }});
  const auto port = g.start();
  auto from = [&](const std::string& client) {
    return status_of(exchange_raw(port, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: " + client +
                                            "\r\nConnection: close\r\n\r\n"));
  };
  CHECK(from("203.0.113.9") == 403);
  CHECK(from("198.51.100.7") == 200);
  CHECK(from("::ffff:203.0.113.9") == 403);

  std::this_thread::sleep_for(20ms);
  std::ofstream(deny_file, std::ios::trunc) << "198.51.100.0/24\n";
  CHECK(wait_for([&] { return from("198.51.100.7") == 403; }));
  CHECK(from("203.0.113.9") == 200);
}
