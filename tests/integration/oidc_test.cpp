// A real OpenID provider (npm oidc-provider, tests/interop/oidc_server.mjs) on loopback HTTPS, in
// front of which a gateway built from a JSON configuration checks client-credentials tokens: JWT
// access tokens through OpenID discovery and the JWKS (with key rotations while the gateway runs),
// opaque ones through introspection, and what still works once the provider is gone.
// Needs Node.js and `npm ci --prefix tests/interop`; every wait here is bounded.
#include <doctest/doctest.h>
#include <httplib.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/auth/remote_key_source.hpp"
#include "gatehouse/config.hpp"
#include "integration/fixture.hpp"
#include "support/child_process.hpp"
#include "support/httplib_server.hpp"
#include "support/jwt_signer.hpp"
#include "support/raw_http.hpp"
#include "support/test_certs.hpp"

#ifndef GATEHOUSE_SOURCE_DIR
#error "GATEHOUSE_SOURCE_DIR must name the source tree (set in tests/meson.build)"
#endif

extern char** environ;

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;
using nlohmann::json;
using steady = std::chrono::steady_clock;

namespace {

const std::filesystem::path kInteropDir = std::filesystem::path(GATEHOUSE_SOURCE_DIR) / "tests" / "interop";
const std::string kHowToInstall = "run `npm ci --prefix tests/interop` in the source tree (needs Node.js and npm)";
// As in oidc_server.mjs.
const std::string kClientId = "gatehouse-test-client";
const std::string kClientSecret = "Secret: with+plus/slash%percent";
const std::string kAudience = "https://api.test";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}


// oidc_server.mjs on 127.0.0.1 with the test PKI's server certificate.
class Provider {
 public:
  Provider(const CertificateFiles& cert, const std::vector<std::string>& jwks_files, unsigned short port,
           std::string log_file)
      : log_(std::move(log_file)) {
    std::vector<std::string> argv = {"node", (kInteropDir / "oidc_server.mjs").string(), "--cert", cert.cert_file,
                                     "--key", cert.key_file, "--port", std::to_string(port)};
    for (const auto& f : jwks_files) {
      argv.push_back("--jwks");
      argv.push_back(f);
    }
    child_ = std::make_unique<ChildProcess>(argv, log_);
    const auto line = child_->read_line(20s);
    const json ready = line ? json::parse(*line, nullptr, false) : json();
    if (!ready.is_object() || !ready.value("ready", false)) {
      child_->stop();
      throw std::runtime_error("oidc_server.mjs did not start: " + line.value_or("(no ready line)") + "\n" +
                               read_file(log_));
    }
    port_ = ready.at("port").get<unsigned short>();
    issuer_ = ready.at("issuer").get<std::string>();
  }
  int stop() { return child_->stop(); }
  unsigned short port() const { return port_; }
  const std::string& issuer() const { return issuer_; }

 private:
  std::string log_;
  std::unique_ptr<ChildProcess> child_;
  unsigned short port_ = 0;
  std::string issuer_;
};

// application/x-www-form-urlencoded, as client_secret_basic requires for the id and the secret.
std::string form_encode(const std::string& s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string base64(const std::string& s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<std::size_t>(n > 0 ? n : 0));
  return out;
}

// The provider's token and revocation endpoints, over verified TLS (cpp-httplib's SSLClient).
class ProviderClient {
 public:
  ProviderClient(std::string ca_file, unsigned short port) : ca_(std::move(ca_file)), port_(port) {}

  /// A client-credentials access token: a JWT for `resource` (https://api.test or
  /// https://api.test/alg/<ALG>), an opaque one without.
  std::string token(const std::string& scope, const std::string& resource = {}) {
    httplib::Params form{{"grant_type", "client_credentials"}, {"scope", scope}};
    if (!resource.empty()) form.emplace("resource", resource);
    const json answer = json::parse(post("/token", form), nullptr, false);
    REQUIRE_MESSAGE(answer.contains("access_token"), "token endpoint: " << answer.dump());
    CHECK(answer.value("token_type", "") == "Bearer");
    return answer.at("access_token").get<std::string>();
  }
  std::string jwt(const std::string& alg) { return token("read write", kAudience + "/alg/" + alg); }
  void revoke(const std::string& token) { post("/token/revocation", {{"token", token}}); }

 private:
  std::string post(const std::string& path, const httplib::Params& form) {
    httplib::SSLClient cli("127.0.0.1", port_);
    cli.set_ca_cert_path(ca_.c_str());
    cli.enable_server_certificate_verification(true);
    cli.set_connection_timeout(5, 0);
    cli.set_read_timeout(10, 0);
    cli.set_write_timeout(5, 0);
    const httplib::Headers headers{
        {"Authorization", "Basic " + base64(form_encode(kClientId) + ":" + form_encode(kClientSecret))}};
    auto res = cli.Post(path.c_str(), headers, form);
    REQUIRE_MESSAGE(res, path << ": " << httplib::to_string(res.error()));
    REQUIRE_MESSAGE(res->status == 200, path << ": HTTP " << res->status << " " << res->body);
    return res->body;
  }
  std::string ca_;
  unsigned short port_;
};

struct Service {
  Service() {
    server.Get(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      auto header = [&req](const char* name) {
        return req.has_header(name) ? req.get_header_value(name) : std::string("(none)");
      };
      std::lock_guard l(mu);
      ++hits;
      res.set_content("sub=" + header("x-auth-subject") + ";scopes=" + header("x-auth-scopes") +
                          ";client=" + header("x-auth-client"),
                      "text/plain");
    });
    port = runner.start(server);
  }
  int hit_count() {
    std::lock_guard l(mu);
    return hits;
  }
  httplib::Server server;
  unsigned short port = 0;
  std::mutex mu;
  int hits = 0;
  ServerThread runner;  // last: stops the server before the members its handlers use
};

struct Answer {
  int status = 0;
  std::string body;
};

Answer get(unsigned short port, const std::string& path, const std::string& token) {
  const std::string r = exchange_raw(port, "GET " + path + " HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n" +
                                               "Authorization: Bearer " + token + "\r\n\r\n");
  return {status_of(r), body_of(r)};
}

// The JOSE header of a compact JWS, decoded.
std::string jose_header(const std::string& jwt) {
  static constexpr std::string_view table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string text;
  unsigned bits = 0, acc = 0;
  for (char c : std::string_view(jwt).substr(0, jwt.find('.'))) {
    const std::size_t v = table.find(c);
    if (v == std::string_view::npos) break;
    acc = ((acc << 6) | static_cast<unsigned>(v)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      text += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return text;
}

std::string kid_of(const std::string& jwt) {
  const json h = json::parse(jose_header(jwt), nullptr, false);
  return h.is_object() ? h.value("kid", "") : "";
}

// One character changed in the middle of the payload or of the signature.
std::string tampered(std::string jwt, bool signature) {
  const std::size_t dot1 = jwt.find('.'), dot2 = jwt.find('.', dot1 + 1);
  const std::size_t at = signature ? (dot2 + jwt.size()) / 2 : (dot1 + dot2) / 2;
  jwt[at] = jwt[at] == 'A' ? 'B' : 'A';
  return jwt;
}

const auth::RemoteKeySource& key_source_of(const GatewayConfig& config, const std::string& verifier) {
  const auto v = std::dynamic_pointer_cast<const auth::JwtVerifier>(config.context.verifiers.at(verifier));
  REQUIRE(v);
  const auto* keys = dynamic_cast<const auth::RemoteKeySource*>(v->options().issuers.at(0).keys.get());
  REQUIRE(keys);
  return *keys;
}

json gateway_config(unsigned short service_port, const std::string& issuer, const std::string& ca_file) {
  const json jwt_verifier = {
      {"type", "jwt"},
      {"issuers",
       json::array({{{"issuer", issuer},
                     {"discovery", true},
                     {"ca_file", ca_file},
                     {"unknown_kid_interval_s", 1},
                     {"min_refresh_s", 1},
                     {"default_refresh_s", 300}}})},
      {"algorithms", {"RS256", "ES256", "PS256", "EdDSA"}},
      {"audiences", {kAudience}},
      {"typ", "at+jwt"}};
  const json introspection_verifier = {{"type", "introspection"},   {"issuer", issuer},
                                       {"client_id", kClientId},    {"client_secret", kClientSecret},
                                       {"ca_file", ca_file},        {"issuers", {issuer}}};
  const json identity = {{"claims", {{"client_id", "x-auth-client"}}}};
  auto route = [&](const char* name, const json& verifiers, json more = json::array()) {
    json chain = json::array({{{"name", "authenticate"}, {"options", {{"verifiers", verifiers}, {"identity", identity}}}}});
    for (auto& m : more) chain.push_back(std::move(m));
    return json{{"name", name}, {"path", std::string("/") + name}, {"upstream", "svc"}, {"middleware", chain}};
  };
  json doc;
  doc["workers"] = 1;
  doc["listeners"] = json::array({{{"address", "127.0.0.1"}, {"port", 0}}});
  doc["upstreams"]["svc"]["endpoints"] = json::array({"127.0.0.1:" + std::to_string(service_port)});
  doc["verifiers"]["oidc-jwt"] = jwt_verifier;
  doc["verifiers"]["oidc-opaque"] = introspection_verifier;
  doc["routes"] = json::array(
      {route("jwt", json::array({"oidc-jwt"})), route("opaque", json::array({"oidc-opaque"})),
       route("both", json::array({"oidc-jwt", "oidc-opaque"}),
             json::array({{{"name", "authorize"}, {"options", {{"scopes", json::array({"read"})}}}}}))});
  return doc;
}

const std::string kCaller = "sub=" + kClientId + ";scopes=read write;client=" + kClientId;

}  // namespace

TEST_CASE("oidc interop: a real OpenID provider's JWT and opaque access tokens, rotations and outages") {
  const CommandResult node = run_command("node --version");
  if (node.exit_code != 0) FAIL("node is not on PATH (" << node.output << "); install Node.js, then " << kHowToInstall);
  if (!std::filesystem::exists(kInteropDir / "node_modules" / "oidc-provider" / "package.json")) {
    FAIL("npm package oidc-provider is not installed in " << kInteropDir.string() << ": " << kHowToInstall);
  }
  TestPki pki("gatehouse oidc test CA");
  const CertificateFiles cert = pki.issue("oidc-provider", {"localhost"}, {"127.0.0.1"});
  const std::string log = pki.dir + "/oidc_server.log";
  // Three generations of provider keys (RS256, PS256, ES256, EdDSA each): gen1, then gen2 with
  // gen1 still published, then gen3 alone.
  const CommandResult made = run_command("timeout 60 node '" + (kInteropDir / "make_jwks.mjs").string() + "' '" +
                                         pki.dir + "' gen1 gen2 gen3");
  REQUIRE_MESSAGE(made.exit_code == 0, "make_jwks.mjs: " << made.output);
  const auto jwks = [&pki](const char* gen) { return pki.dir + "/" + gen + ".json"; };
  INFO("oidc_server.mjs stderr (" << log << "):\n" << read_file(log));  // read only when a check fails

  auto provider = std::make_unique<Provider>(cert, std::vector<std::string>{jwks("gen1")}, 0, log);
  const std::string issuer = provider->issuer();
  const unsigned short provider_port = provider->port();
  CHECK(issuer == "https://127.0.0.1:" + std::to_string(provider_port));
  ProviderClient idp(pki.ca_cert, provider_port);

  Service svc;
  const GatewayConfig config = load_config(gateway_config(svc.port, issuer, pki.ca_cert).dump());
  GatewayUnderTest g(config.options);  // stops the gateway whatever happens
  apply(config, *g.gw);
  g.gw->start();
  const unsigned short port = g.gw->local_endpoints().at(0).port();
  const auth::RemoteKeySource& keys = key_source_of(config, "oidc-jwt");
  // The verifiers behind the routes, asked directly where the exact reason matters.
  const auth::TokenVerifier& jwt_verifier = *config.context.verifiers.at("oidc-jwt");
  const auth::TokenVerifier& introspection = *config.context.verifiers.at("oidc-opaque");
  auto reason = [](const auth::TokenVerifier& v, const std::string& token) { return run_verify(v, token).error(); };
  REQUIRE_MESSAGE(keys.wait_ready(10s), "first JWKS fetch: " << keys.stats().last_error);
  auto last_fetch = steady::now();
  // Unknown kids may trigger a fetch once unknown_kid_interval_s (1 s) has passed since the last.
  auto after_rate_cap = [&last_fetch] { std::this_thread::sleep_until(last_fetch + 1200ms); };
  {
    const auto s = keys.stats();
    CHECK(s.jwks_uri == issuer + "/jwks");  // found by discovery
    CHECK(s.keys == 4);
    CHECK(s.fetches == 1);
    CHECK(s.failures == 0);
  }

  // (a) Discovery and JWKS: JWT access tokens of every algorithm are accepted, tampered ones not.
  std::string gen1_token;
  std::string gen1_unseen;  // signed by gen1, never shown to the gateway before the rotation
  for (const char* alg : {"RS256", "PS256", "ES256", "EdDSA"}) {
    CAPTURE(alg);
    const std::string token = idp.jwt(alg);
    CHECK(kid_of(token).starts_with("gen1-"));
    const Answer a = get(port, "/jwt/orders", token);
    CHECK(a.status == 200);
    CHECK(a.body == kCaller);
    CHECK(get(port, "/both/orders", token).status == 200);
    CHECK(get(port, "/jwt/orders", tampered(token, /*signature=*/true)).status == 401);
    CHECK(get(port, "/jwt/orders", tampered(token, /*signature=*/false)).status == 401);
    CHECK(get(port, "/both/orders", tampered(token, true)).status == 401);  // bad signature; introspection: inactive
    CHECK(reason(jwt_verifier, tampered(token, true)) == auth::TokenError::bad_signature);
    if (gen1_token.empty()) gen1_token = token;
  }
  gen1_unseen = idp.token("read", kAudience);  // resource https://api.test: RS256
  CHECK(kid_of(gen1_unseen) == "gen1-rs256");
  CHECK(get(port, "/opaque/orders", gen1_token).status == 401);  // JWT access tokens are not introspectable
  CHECK(keys.stats().fetches == 1);

  // (b) Rotation while the gateway runs: the provider restarts on the same port with a new key
  // set, the new kid first. The first token with a new kid makes the gateway fetch the JWKS again.
  provider->stop();
  provider = std::make_unique<Provider>(cert, std::vector<std::string>{jwks("gen2"), jwks("gen1")}, provider_port, log);
  const std::string gen2_token = idp.jwt("ES256");
  CHECK(kid_of(gen2_token) == "gen2-es256");
  after_rate_cap();
  {
    const Answer a = get(port, "/jwt/orders", gen2_token);
    CHECK(a.status == 200);
    CHECK(a.body == kCaller);
    last_fetch = steady::now();
    const auto s = keys.stats();
    CHECK(s.fetches == 2);
    CHECK(s.keys == 8);
  }
  // The old kid is still published: old tokens keep working, cached or not.
  CHECK(get(port, "/jwt/orders", gen1_token).status == 200);
  CHECK(get(port, "/jwt/orders", gen1_unseen).status == 200);

  // A second rotation drops gen1 and gen2: their tokens are refused once the gateway has the new set.
  provider->stop();
  provider = std::make_unique<Provider>(cert, std::vector<std::string>{jwks("gen3")}, provider_port, log);
  const std::string gen3_token = idp.jwt("EdDSA");
  CHECK(kid_of(gen3_token) == "gen3-eddsa");
  after_rate_cap();
  CHECK(get(port, "/jwt/orders", gen3_token).status == 200);
  last_fetch = steady::now();
  CHECK(keys.stats().fetches == 3);
  CHECK(keys.stats().keys == 4);
  CHECK(get(port, "/jwt/orders", gen1_token).status == 401);  // cached, but its key is gone
  CHECK(get(port, "/jwt/orders", gen2_token).status == 401);
  CHECK(reason(jwt_verifier, gen1_token) == auth::TokenError::unknown_key);
  CHECK(keys.stats().fetches == 3);  // unknown kids within the rate cap fetch nothing

  // (c) Opaque tokens (no resource) are introspected with client_secret_basic.
  const std::string opaque = idp.token("read write");
  CHECK(opaque.find('.') == std::string::npos);
  {
    const Answer a = get(port, "/opaque/orders", opaque);
    CHECK(a.status == 200);
    CHECK(a.body == "sub=(none);scopes=read write;client=" + kClientId);  // no "sub" for client credentials
    CHECK(get(port, "/both/orders", opaque).status == 200);
  }
  const std::string write_only = idp.token("write");
  CHECK(get(port, "/opaque/orders", write_only).status == 200);
  CHECK(get(port, "/both/orders", write_only).status == 403);  // authorize wants "read"
  const std::string revoked = idp.token("read");
  idp.revoke(revoked);
  CHECK(get(port, "/opaque/orders", revoked).status == 401);
  CHECK(get(port, "/both/orders", revoked).status == 401);
  CHECK(get(port, "/opaque/orders", "garbage-0123456789abcdef").status == 401);
  CHECK(get(port, "/both/orders", "garbage-0123456789abcdef").status == 401);

  // Tokens the gateway has not seen yet, for after the provider is gone.
  const std::string opaque_unseen = idp.token("read");
  const std::string jwt_unseen = idp.jwt("PS256");
  CHECK(kid_of(jwt_unseen) == "gen3-ps256");

  // (d) The provider stops. Verified tokens and cached keys keep working; what needs the provider
  // fails closed.
  const int hits_before = svc.hit_count();
  provider->stop();
  provider.reset();
  CHECK(get(port, "/jwt/orders", gen3_token).status == 200);   // verified before
  CHECK(get(port, "/jwt/orders", jwt_unseen).status == 200);   // its key is cached
  CHECK(get(port, "/both/orders", jwt_unseen).status == 200);
  CHECK(get(port, "/opaque/orders", opaque).status == 200);    // introspected before
  CHECK(get(port, "/both/orders", opaque).status == 200);
  CHECK(get(port, "/opaque/orders", opaque_unseen).status == 503);  // introspection unavailable
  CHECK(get(port, "/both/orders", opaque_unseen).status == 503);
  CHECK(reason(introspection, opaque_unseen) == auth::TokenError::introspection_unavailable);
  CHECK(svc.hit_count() == hits_before + 5);

  // A token with a kid the provider never published: the refetch it triggers fails, the cached keys
  // stay, and the token is refused as signed by an unknown key.
  const TestKey stranger = TestKey::generate("ES256", /*fresh=*/true);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string unknown_kid = make_token(
      stranger, {{"alg", "ES256"}, {"typ", "at+jwt"}, {"kid", "gen9-es256"}},
      {{"iss", issuer}, {"aud", kAudience}, {"sub", kClientId}, {"scope", "read"}, {"iat", now}, {"exp", now + 300}});
  after_rate_cap();
  CHECK(get(port, "/jwt/orders", unknown_kid).status == 401);
  {
    const auto s = keys.stats();
    CHECK(s.fetches == 4);
    CHECK(s.failures == 1);
    CHECK(s.keys == 4);
    CHECK_FALSE(s.last_error.empty());
  }
  CHECK(reason(jwt_verifier, unknown_kid) == auth::TokenError::unknown_key);
  // With the introspection verifier after it, the route cannot rule out an opaque token: 503.
  CHECK(get(port, "/both/orders", unknown_kid).status == 503);
  CHECK(get(port, "/jwt/orders", gen3_token).status == 200);

  // A key source that never reached the provider has no keys: every token fails closed (503).
  {
    auth::RemoteKeySourceOptions ro;
    ro.issuer = issuer;
    ro.tls.ca_file = pki.ca_cert;
    ro.fetch_timeout = 2s;
    ro.logger = null_logger();
    auto fresh_keys = std::make_shared<auth::RemoteKeySource>(std::move(ro));
    CHECK_FALSE(fresh_keys->wait_ready(5s));
    auth::JwtVerifierOptions vo;
    vo.algorithms = {"RS256", "ES256", "PS256", "EdDSA"};
    vo.issuers = {{issuer, fresh_keys}};
    vo.audiences = {kAudience};
    const auto fresh_verifier = std::make_shared<auth::JwtVerifier>(std::move(vo));
    AuthenticateOptions ao;
    ao.verifiers = {fresh_verifier};
    ao.logger = null_logger();
    GatewayUnderTest g2;
    g2.gw->route({.name = "fresh",
                  .path = "/fresh",
                  .middleware = {std::make_shared<Authenticate>(std::move(ao))},
                  .origin = upstream_at(svc.port)});
    const auto port2 = g2.start();
    CHECK(get(port2, "/fresh/orders", gen3_token).status == 503);
    CHECK(fresh_keys->stats().keys == 0);
    CHECK(reason(*fresh_verifier, gen3_token) == auth::TokenError::key_source_unavailable);
  }
}
