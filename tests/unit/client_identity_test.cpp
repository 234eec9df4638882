// Service identity from client certificates: what is read from a certificate (subject, SANs,
// SPIFFE ID), authorization rules on it, the identity headers for the upstream, and response
// hardening. Certificates come from TestPki; no sockets.
#include <doctest/doctest.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "gatehouse/client_identity.hpp"
#include "gatehouse/config.hpp"
#include "gatehouse/middleware/authorize.hpp"
#include "gatehouse/middleware/client_identity_headers.hpp"
#include "gatehouse/middleware/response_hardening.hpp"
#include "gatehouse/testing.hpp"
#include "support/test_certs.hpp"
#include "tls/client_identity.hpp"

using namespace gatehouse;
namespace gt = gatehouse::testing;
using nlohmann::json;

namespace {

ClientIdentity identity_of(const std::string& cert_file) {
  BIO* bio = BIO_new_file(cert_file.c_str(), "r");
  REQUIRE(bio);
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  REQUIRE(cert);
  ClientIdentity id = detail::read_client_identity(cert);
  X509_free(cert);
  return id;
}

ClientIdentity svid(std::string spiffe_id) {
  ClientIdentity id;
  id.subject = "CN=svc,O=corp";
  id.uris = {spiffe_id};
  id.spiffe_id = std::move(spiffe_id);
  return id;
}

unsigned status_of(const Flow& f) { return f.is_response() ? f.response().status() : 0; }

}  // namespace

TEST_CASE("client identity: subject, every kind of SAN, and the SPIFFE ID") {
  test::TestPki pki;
  const auto files = pki.issue_client("billing-api", {.dns = {"billing.internal"},
                                                      .ips = {"10.1.2.3", "fd00::7"},
                                                      .uris = {"spiffe://corp/ns/billing/sa/api"},
                                                      .emails = {"ops@corp.example"}});
  const ClientIdentity id = identity_of(files.cert_file);
  CHECK(id.subject == "CN=billing-api,O=gatehouse tests");
  CHECK(id.issuer == "CN=gatehouse test CA,O=gatehouse tests");
  CHECK(!id.serial.empty());
  CHECK(id.dns_names == std::vector<std::string>{"billing.internal"});
  CHECK(id.ips == std::vector<std::string>{"10.1.2.3", "fd00::7"});
  CHECK(id.emails == std::vector<std::string>{"ops@corp.example"});
  CHECK(id.spiffe_id == "spiffe://corp/ns/billing/sa/api");

  CHECK(id.has_principal("spiffe://corp/ns/billing/sa/api"));
  CHECK(id.has_principal("spiffe://corp/ns/billing/*"));
  CHECK_FALSE(id.has_principal("spiffe://corp/ns/bill/*"));
  CHECK(id.has_principal("dns:BILLING.internal"));
  CHECK(id.has_principal("ip:10.1.2.3"));
  CHECK(id.has_principal("email:ops@corp.example"));
  CHECK(id.has_principal("uri:spiffe://corp/ns/billing/sa/api"));
  CHECK(id.has_principal("subject:CN=billing-api,O=gatehouse tests"));
  CHECK_FALSE(id.has_principal("subject:CN=billing-api"));
  CHECK_FALSE(id.has_principal("dns:other.internal"));

  // Two URI SANs: which one is the workload is ambiguous, so there is no SPIFFE ID.
  const auto two = pki.issue_client("two", {.uris = {"spiffe://corp/a", "https://corp.example/b"}});
  CHECK(identity_of(two.cert_file).spiffe_id.empty());
  const auto bad = pki.issue_client("bad", {.uris = {"spiffe://Corp/../x"}});
  CHECK(identity_of(bad.cert_file).spiffe_id.empty());
}

TEST_CASE("SPIFFE IDs and principals are checked for syntax") {
  CHECK(is_spiffe_id("spiffe://corp/ns/billing/sa/api"));
  CHECK(is_spiffe_id("spiffe://example.org"));
  CHECK_FALSE(is_spiffe_id("spiffe://"));
  CHECK_FALSE(is_spiffe_id("spiffe://Example.org/a"));  // trust domains are lower case
  CHECK_FALSE(is_spiffe_id("spiffe://corp/a/"));
  CHECK_FALSE(is_spiffe_id("spiffe://corp/a//b"));
  CHECK_FALSE(is_spiffe_id("spiffe://corp/./b"));
  CHECK_FALSE(is_spiffe_id("spiffe://corp/a?x=1"));
  CHECK_FALSE(is_spiffe_id("https://corp/a"));
  CHECK(is_principal("dns:api.internal"));
  CHECK(is_principal("subject:CN=x,O=y"));
  CHECK_FALSE(is_principal("dns:"));
  CHECK_FALSE(is_principal("host:api"));
  CHECK_FALSE(is_principal("dns:a\nb"));
}

TEST_CASE("authorize on the certificate identity: SPIFFE IDs, principals, and with token rules") {
  Authorize only_billing({.rule = Rule::spiffe_id_in({"spiffe://corp/ns/billing/sa/api"})});
  const ClientIdentity billing = svid("spiffe://corp/ns/billing/sa/api");
  const ClientIdentity web = svid("spiffe://corp/ns/web/sa/frontend");

  gt::EventRecorder recorder;
  auto ex = gt::exchange("POST", "/internal/payments");
  recorder.attach(ex);
  gt::set_client_identity(ex, &billing);
  CHECK(only_billing.on_request(ex).is_next());
  gt::set_client_identity(ex, &web);
  CHECK(status_of(only_billing.on_request(ex)) == 403);
  gt::set_client_identity(ex, nullptr);
  CHECK(status_of(only_billing.on_request(ex)) == 401);  // no certificate, no token
  const auto events = recorder.events();
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == SecurityEventKind::authorization_denied);
  CHECK(events[0].rule_name == "spiffe_id in (spiffe://corp/ns/billing/sa/api)");

  // A certificate or a token: either alternative lets the caller in.
  Authorize either({.rule = Rule::any_of({Rule::principal_in({"dns:billing.internal"}), Rule::require_scopes({"pay"})})});
  ClientIdentity by_dns;
  by_dns.dns_names = {"billing.internal"};
  auto ex2 = gt::exchange("GET", "/");
  gt::set_client_identity(ex2, &by_dns);
  CHECK(either.on_request(ex2).is_next());
  gt::set_client_identity(ex2, &web);
  CHECK(status_of(either.on_request(ex2)) == 401);  // a token with the scope could still do
  ex2.emplace<auth::Claims>(auth::Claims(json{{"sub", "alice"}, {"scope", "pay"}}));
  CHECK(either.on_request(ex2).is_next());

  CHECK_THROWS_AS(Authorize({.rule = Rule::spiffe_id_in({"https://corp/x"})}), std::invalid_argument);
  CHECK_THROWS_AS(Authorize({.rule = Rule::principal_in({"host:x"})}), std::invalid_argument);
}

TEST_CASE("client identity headers: forged copies go, the verified identity is sent") {
  ClientIdentityHeaders mw({.spiffe_id = "X-Client-SPIFFE-ID", .subject = "x-client-subject", .sans = "x-client-sans"});
  auto forged = gt::exchange("GET", "/", {{"x-client-spiffe-id", "spiffe://corp/ns/admin/sa/root"},
                                          {"X-Client-Subject", "CN=root"}, {"x-client-sans", "DNS:root"}});
  CHECK(mw.on_request(forged).is_next());
  CHECK_FALSE(forged.request().headers().contains("x-client-spiffe-id"));
  CHECK_FALSE(forged.request().headers().contains("x-client-subject"));
  CHECK_FALSE(forged.request().headers().contains("x-client-sans"));

  ClientIdentity id = svid("spiffe://corp/ns/billing/sa/api");
  id.dns_names = {"billing.internal"};
  auto ex = gt::exchange("GET", "/", {{"x-client-spiffe-id", "spiffe://corp/forged"}});
  gt::set_client_identity(ex, &id);
  CHECK(mw.on_request(ex).is_next());
  CHECK(ex.request().headers().count("x-client-spiffe-id") == 1);
  CHECK(ex.request().headers().get("x-client-spiffe-id") == "spiffe://corp/ns/billing/sa/api");
  CHECK(ex.request().headers().get("x-client-subject") == "CN=svc,O=corp");
  CHECK(ex.request().headers().get("x-client-sans") == "DNS:billing.internal, URI:spiffe://corp/ns/billing/sa/api");

  CHECK_THROWS_AS(ClientIdentityHeaders({.spiffe_id = ""}), std::invalid_argument);
  CHECK_THROWS_AS(ClientIdentityHeaders({.spiffe_id = "bad header"}), std::invalid_argument);
  CHECK_THROWS_AS(ClientIdentityHeaders({.spiffe_id = "host"}), std::invalid_argument);
  CHECK_THROWS_AS(ClientIdentityHeaders({.spiffe_id = "x-a", .subject = "X-A"}), std::invalid_argument);
}

TEST_CASE("response hardening: security headers, internals removed, upstream 5xx replaced") {
  ResponseHardening mw({.extra = {{"Content-Security-Policy", "default-src 'none'"}}, .replace_upstream_5xx = true});

  auto ex = gt::exchange("GET", "/");
  gt::set_secure(ex, true);
  gt::set_upstream_endpoint(ex, "10.0.0.5:8080");
  ex.response().headers().set("server", "Apache/2.4.57 (Debian)");
  ex.response().headers().set("x-powered-by", "PHP/8.2");
  ex.response().headers().set("x-frame-options", "SAMEORIGIN");  // the service's own choice stays
  CHECK(mw.on_response(ex).is_next());
  const Headers& h = ex.response().headers();
  CHECK_FALSE(h.contains("server"));
  CHECK_FALSE(h.contains("x-powered-by"));
  CHECK(h.get("x-frame-options") == "SAMEORIGIN");
  CHECK(h.get("x-content-type-options") == "nosniff");
  CHECK(h.get("referrer-policy") == "no-referrer");
  CHECK(h.get("strict-transport-security") == "max-age=31536000; includeSubDomains");
  CHECK(h.get("content-security-policy") == "default-src 'none'");

  auto plain = gt::exchange("GET", "/");
  CHECK(mw.on_response(plain).is_next());
  CHECK_FALSE(plain.response().headers().contains("strict-transport-security"));  // HSTS over TLS only

  auto failed = gt::exchange("GET", "/");
  gt::set_upstream_endpoint(failed, "10.0.0.5:8080");
  failed.response().set_status(503u);
  failed.response().headers().set("retry-after", "5");
  failed.response().headers().set("x-debug-host", "db-primary-3");
  Flow f = mw.on_response(failed);
  REQUIRE(f.is_response());
  CHECK(f.response().status() == 503);
  CHECK(f.response().headers().get("retry-after") == "5");
  CHECK_FALSE(f.response().headers().contains("x-debug-host"));
  CHECK(f.response().headers().get("x-content-type-options") == "nosniff");

  auto own = gt::exchange("GET", "/");  // the gateway's own 502: nothing to hide, left alone
  own.response().set_status(502u);
  CHECK(mw.on_response(own).is_next());

  CHECK_THROWS_AS(ResponseHardening({.frame_options = "DENY\r\nSet-Cookie: x=1"}), std::invalid_argument);
  CHECK_THROWS_AS(ResponseHardening({.remove = {"bad name"}}), std::invalid_argument);
}

TEST_CASE("configuration of the identity and hardening middleware, and of CRLs") {
  test::TestPki pki;
  const auto server = pki.issue("server", {"localhost"});
  const std::string crl = pki.write_crl({});
  json doc = {
      {"listeners",
       {{{"port", 8443},
         {"tls",
          {{"certificates", {{{"cert", server.cert_file}, {"key", server.key_file}}}},
           {"client_ca", pki.ca_cert},
           {"crls", {crl}},
           {"crl_check_chain", true},
           {"max_chain_depth", 2}}}}}},
      {"upstreams", {{"svc", {{"endpoints", {"127.0.0.1:9001"}}}}}},
      {"middleware",
       {{{"name", "client_identity_headers"}, {"options", {{"spiffe_id", "x-spiffe"}, {"subject", "x-subject"}}}},
        {{"name", "response_hardening"},
         {"options", {{"frame_options", "SAMEORIGIN"}, {"remove", {"server"}}, {"replace_upstream_5xx", true}}}}}},
      {"routes",
       {{{"path", "/internal"},
         {"upstream", "svc"},
         {"middleware",
          {{{"name", "authorize"},
            {"options", {{"spiffe_ids", {"spiffe://corp/ns/billing/*"}}, {"principals", {"dns:ops.internal"}},
                         {"any_of", true}}}}}}}}}};
  const GatewayConfig config = load_config(doc.dump());
  const ServerTls& tls = *config.listeners.at(0).tls;
  CHECK(tls.crl_files == std::vector<std::string>{crl});
  CHECK(tls.crl_check_chain);
  CHECK(tls.max_chain_depth == 2);
  auto headers = std::dynamic_pointer_cast<const ClientIdentityHeaders>(config.middleware.at(0));
  REQUIRE(headers);
  CHECK(headers->options().subject == "x-subject");
  auto hardening = std::dynamic_pointer_cast<const ResponseHardening>(config.middleware.at(1));
  REQUIRE(hardening);
  CHECK(hardening->options().remove == std::vector<std::string>{"server"});
  auto authorize = std::dynamic_pointer_cast<const Authorize>(config.routes.at(0).middleware.at(0));
  REQUIRE(authorize);
  CHECK(authorize->options().rule.kind == Rule::Kind::any_of);

  auto error_of = [](const json& d) {
    try {
      load_config(d.dump());
    } catch (const ConfigError& e) {
      return e;
    }
    FAIL("expected a ConfigError");
    return ConfigError("", "");
  };
  json bad = doc;
  bad["routes"][0]["middleware"][0]["options"]["spiffe_ids"] = {"spiffe://corp/ns/billing/*", "spiffe://Corp"};
  auto e = error_of(bad);
  CHECK(e.path() == "/routes/0/middleware/0/options/spiffe_ids/1");
  bad = doc;
  bad["listeners"][0]["tls"].erase("client_ca");
  e = error_of(bad);
  CHECK(e.path() == "/listeners/0/tls/crls");
  bad = doc;
  bad["listeners"][0]["tls"]["crls"] = {server.cert_file};  // a certificate, not a CRL
  e = error_of(bad);
  CHECK(e.path() == "/listeners/0/tls/crls/0");
  CHECK(e.reason().find("no valid PEM CRL") != std::string::npos);
  bad = doc;
  bad["middleware"][1]["options"]["referrer_policy"] = "a\nb";
  e = error_of(bad);
  CHECK(e.path() == "/middleware/1/options/referrer_policy");
}
