// Remote keys (JWKS over HTTPS, OpenID discovery) and token introspection against cpp-httplib
// SSL servers on loopback whose certificates come from a test CA: loading, Cache-Control, unknown
// kids (single flight, rate cap), a key server that goes away, bad certificates, and introspection
// answers of every kind, including none at all.
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#include <httplib.h>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gatehouse/auth/introspection_verifier.hpp"
#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/auth/remote_key_source.hpp"
#include "support/capture_logger.hpp"
#include "support/httplib_server.hpp"
#include "support/jwt_signer.hpp"
#include "support/test_certs.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;
using auth::TokenError;
using nlohmann::json;

namespace {

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A key server: serves `jwks` (changeable) at /jwks and discovery metadata, counting requests.
struct KeyServer {
  TestPki pki{"key server CA"};
  CertificateFiles cert = pki.issue("keys", {"localhost"}, {"127.0.0.1"});
  httplib::SSLServer server{cert.cert_file.c_str(), cert.key_file.c_str()};
  std::mutex mu;
  json jwks;
  std::string cache_control = "max-age=300";
  std::string issuer_in_metadata;  // "" : the real one
  std::chrono::milliseconds delay{0};
  std::atomic<int> jwks_requests{0}, discovery_requests{0};
  ServerThread thread;
  unsigned short port = 0;

  explicit KeyServer(json initial) : jwks(std::move(initial)) {
    server.Get("/jwks", [this](const httplib::Request&, httplib::Response& res) {
      ++jwks_requests;
      std::this_thread::sleep_for(delay);
      std::lock_guard lock(mu);
      res.set_header("Cache-Control", cache_control);
      res.set_content(jwks.dump(), "application/json");
    });
    server.Get("/.well-known/openid-configuration", [this](const httplib::Request&, httplib::Response& res) {
      ++discovery_requests;
      std::lock_guard lock(mu);
      res.set_content(json{{"issuer", issuer_in_metadata.empty() ? issuer() : issuer_in_metadata},
                           {"jwks_uri", url("/jwks")},
                           {"introspection_endpoint", url("/introspect")}}
                          .dump(),
                      "application/json");
    });
    server.Post("/introspect", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"active":true,"sub":"via-discovery"})", "application/json");
    });
    // An endless chunked answer: the client must stop reading at its cap, not at the timeout.
    server.Get("/endless", [](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("application/json", [](std::size_t, httplib::DataSink& sink) {
        static const std::string chunk(64 * 1024, ' ');
        return sink.write(chunk.data(), chunk.size());
      });
    });
    port = thread.start(server);
  }
  std::string issuer() const { return "https://127.0.0.1:" + std::to_string(port); }
  std::string url(const std::string& path) const { return issuer() + path; }
  void set_jwks(json j) {
    std::lock_guard lock(mu);
    jwks = std::move(j);
  }
};

json two_keys(const TestKey& a, const std::string& kid_a, const TestKey& b, const std::string& kid_b) {
  return {{"keys", {a.public_jwk(kid_a), b.public_jwk(kid_b)}}};
}

std::shared_ptr<auth::JwtVerifier> verifier_for(const std::string& issuer, std::shared_ptr<const auth::KeySource> keys,
                                                bool cache = true) {
  auth::JwtVerifierOptions o;
  o.algorithms = {"RS256", "ES256"};
  o.issuers = {{issuer, std::move(keys)}};
  o.cache.enabled = cache;
  return std::make_shared<auth::JwtVerifier>(std::move(o));
}

std::string token(const TestKey& key, const std::string& kid, const std::string& issuer) {
  return make_token(key, {{"alg", key.alg()}, {"kid", kid}}, {{"iss", issuer}, {"sub", "svc"}, {"exp", now_s() + 600}});
}

auth::RemoteKeySourceOptions remote(const KeyServer& ks, std::vector<std::string>* log = nullptr) {
  auth::RemoteKeySourceOptions o;
  o.jwks_uri = ks.url("/jwks");
  o.tls.ca_file = ks.pki.ca_cert;
  o.unknown_kid_interval = 0s;
  o.logger = log ? std::make_shared<CaptureLogger>(log) : null_logger();
  return o;
}

}  // namespace

TEST_CASE("remote JWKS over HTTPS: loaded at start, verified against the CA, refetched for a new kid") {
  const TestKey rsa = TestKey::generate("RS256");
  const TestKey ec = TestKey::generate("ES256");
  KeyServer ks(json{{"keys", {rsa.public_jwk("r1")}}});
  std::vector<std::string> log;
  auto keys = std::make_shared<auth::RemoteKeySource>(remote(ks, &log));
  REQUIRE(keys->wait_ready(5s));
  CHECK(keys->current()->size() == 1);
  auto v = verifier_for(ks.issuer(), keys);

  CHECK(run_verify(*v, token(rsa, "r1", ks.issuer())).ok());
  CHECK(ks.jwks_requests == 1);

  // A rotation: the server now also publishes e1; a token naming it makes the source fetch again.
  ks.set_jwks(two_keys(rsa, "r1", ec, "e1"));
  const auto r = run_verify(*v, token(ec, "e1", ks.issuer()));
  CHECK_MESSAGE(r.ok(), r.detail());
  CHECK(ks.jwks_requests == 2);
  CHECK(keys->stats().keys == 2);
  // Unchanged documents keep the key set (and the verified-token cache) as they are.
  const auto generation = keys->generation();
  CHECK(run_verify(*v, token(ec, "e9", ks.issuer())).error() == TokenError::unknown_key);
  CHECK(keys->generation() == generation);
  CHECK(ks.jwks_requests == 3);
}

TEST_CASE("remote JWKS: concurrent unknown kids share one fetch, and made-up kids are rate-capped") {
  const TestKey rsa = TestKey::generate("RS256");
  const TestKey ec = TestKey::generate("ES256");
  KeyServer ks(json{{"keys", {rsa.public_jwk("r1")}}});
  auto opts = remote(ks);
  opts.unknown_kid_interval = 60s;
  auto keys = std::make_shared<auth::RemoteKeySource>(opts);
  REQUIRE(keys->wait_ready(5s));
  auto v = verifier_for(ks.issuer(), keys, false);
  CHECK(ks.jwks_requests == 1);

  // Within the interval of the first fetch, unknown kids cause no fetch at all.
  for (int i = 0; i < 50; ++i) {
    CHECK(run_verify(*v, token(rsa, "made-up-" + std::to_string(i), ks.issuer())).error() == TokenError::unknown_key);
  }
  CHECK(ks.jwks_requests == 1);

  // With no cap, many requests for the same new kid at once: one fetch, all accepted.
  auto fresh = remote(ks);
  ks.delay = 300ms;
  ks.set_jwks(two_keys(rsa, "r1", ec, "e1"));
  auto keys2 = std::make_shared<auth::RemoteKeySource>(fresh);
  REQUIRE(keys2->wait_ready(5s));
  ks.set_jwks(json{{"keys", {rsa.public_jwk("r1"), ec.public_jwk("e1"), ec.public_jwk("e2")}}});
  const int before = ks.jwks_requests;
  auto v2 = verifier_for(ks.issuer(), keys2, false);
  const TestKey& e2 = ec;
  std::vector<std::future<bool>> results;
  for (int i = 0; i < 8; ++i) {
    results.push_back(std::async(std::launch::async, [&] { return run_verify(*v2, token(e2, "e2", ks.issuer())).ok(); }));
  }
  for (auto& f : results) CHECK(f.get());
  CHECK(ks.jwks_requests - before == 1);
}

TEST_CASE("remote JWKS: the last good keys keep serving while the key server is down") {
  const TestKey rsa = TestKey::generate("RS256");
  auto ks = std::make_unique<KeyServer>(json{{"keys", {rsa.public_jwk("r1")}}});
  const std::string issuer = ks->issuer();
  std::vector<std::string> log;
  auto opts = remote(*ks, &log);
  opts.fetch_timeout = 1s;
  auto keys = std::make_shared<auth::RemoteKeySource>(opts);
  REQUIRE(keys->wait_ready(5s));
  auto v = verifier_for(issuer, keys, false);
  ks.reset();  // the key server is gone

  CHECK(run_verify(*v, token(rsa, "r1", issuer)).ok());
  const auto r = run_verify(*v, token(rsa, "r2", issuer));  // refetch fails; r2 stays unknown
  CHECK(r.error() == TokenError::unknown_key);
  CHECK(run_verify(*v, token(rsa, "r1", issuer)).ok());
  CHECK(keys->stats().failures >= 1);
  CHECK(keys->stats().keys == 1);
}

TEST_CASE("remote JWKS: no keys ever (unreachable, untrusted certificate, garbage) fails closed") {
  const TestKey rsa = TestKey::generate("RS256");
  SUBCASE("nothing listens") {
    auth::RemoteKeySourceOptions o;
    o.jwks_uri = "https://127.0.0.1:1/jwks";
    o.logger = null_logger();
    auto keys = std::make_shared<auth::RemoteKeySource>(o);
    CHECK_FALSE(keys->wait_ready(5s));
    auto v = verifier_for("https://issuer.test", keys);
    CHECK(run_verify(*v, token(rsa, "r1", "https://issuer.test")).error() == TokenError::key_source_unavailable);
  }
  SUBCASE("the certificate is not signed by the configured CA") {
    KeyServer ks(json{{"keys", {rsa.public_jwk("r1")}}});
    TestPki other("another CA");
    auto o = remote(ks);
    o.tls.ca_file = other.ca_cert;
    auto keys = std::make_shared<auth::RemoteKeySource>(o);
    CHECK_FALSE(keys->wait_ready(5s));
    CHECK(keys->stats().last_error.find("certificate verify failed") != std::string::npos);
    CHECK(ks.jwks_requests == 0);
  }
  SUBCASE("the document is not a JWKS, or has no usable key") {
    KeyServer ks(json{{"keys", "nope"}});
    auto keys = std::make_shared<auth::RemoteKeySource>(remote(ks));
    CHECK_FALSE(keys->wait_ready(5s));
    CHECK(keys->stats().last_error.find("invalid JWKS") != std::string::npos);
    ks.set_jwks(json{{"keys", {{{"kty", "RSA"}, {"n", "AQAB"}, {"e", "AQAB"}}}}});
    auto keys2 = std::make_shared<auth::RemoteKeySource>(remote(ks));
    CHECK_FALSE(keys2->wait_ready(5s));
    CHECK(keys2->stats().last_error.find("no usable key") != std::string::npos);
  }
  SUBCASE("documents over the size cap are refused, declared or streamed") {
    KeyServer ks(json{{"keys", {rsa.public_jwk("r1")}}});
    auto o = remote(ks);
    o.max_document_bytes = 100;  // the one-key document is larger
    auto keys = std::make_shared<auth::RemoteKeySource>(o);
    CHECK_FALSE(keys->wait_ready(5s));
    CHECK(keys->stats().last_error.find("larger than 100 bytes") != std::string::npos);
    auto endless = remote(ks);
    endless.jwks_uri = ks.url("/endless");
    endless.fetch_timeout = 10s;
    const auto start = std::chrono::steady_clock::now();
    auto keys2 = std::make_shared<auth::RemoteKeySource>(endless);
    CHECK_FALSE(keys2->wait_ready(8s));
    CHECK(keys2->stats().last_error.find("larger than") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - start < 5s);
  }
  SUBCASE("plain http is refused unless allowed") {
    auth::RemoteKeySourceOptions o;
    o.jwks_uri = "http://127.0.0.1:1/jwks";
    CHECK_THROWS_AS(std::make_shared<auth::RemoteKeySource>(o), std::invalid_argument);
  }
}

TEST_CASE("remote JWKS: Cache-Control max-age, bounded by min_refresh, schedules the background refresh") {
  const TestKey rsa = TestKey::generate("RS256");
  KeyServer ks(json{{"keys", {rsa.public_jwk("r1")}}});
  ks.cache_control = "public, max-age=0";
  auto o = remote(ks);
  o.min_refresh = 1s;
  auto keys = std::make_shared<auth::RemoteKeySource>(o);
  REQUIRE(keys->wait_ready(5s));
  std::this_thread::sleep_for(2500ms);
  // max-age=0 is raised to min_refresh (1 s): two or three more fetches, not hundreds.
  CHECK(ks.jwks_requests >= 2);
  CHECK(ks.jwks_requests <= 4);
}

TEST_CASE("OpenID discovery finds jwks_uri, and refuses metadata naming another issuer") {
  const TestKey rsa = TestKey::generate("RS256");
  KeyServer ks(json{{"keys", {rsa.public_jwk("r1")}}});
  auto o = remote(ks);
  o.jwks_uri.clear();
  o.issuer = ks.issuer();
  auto keys = std::make_shared<auth::RemoteKeySource>(o);
  REQUIRE(keys->wait_ready(5s));
  CHECK(keys->stats().jwks_uri == ks.url("/jwks"));
  CHECK(run_verify(*verifier_for(ks.issuer(), keys), token(rsa, "r1", ks.issuer())).ok());

  ks.issuer_in_metadata = "https://evil.test";
  auto bad = std::make_shared<auth::RemoteKeySource>(o);
  CHECK_FALSE(bad->wait_ready(5s));
  CHECK(bad->stats().last_error.find("\"issuer\" in the metadata") != std::string::npos);
}

namespace {

// An RFC 7662 endpoint: "good" tokens are active until exp, everything else inactive.
struct IntrospectionServer {
  TestPki pki{"introspection CA"};
  CertificateFiles cert = pki.issue("introspect", {"localhost"}, {"127.0.0.1"});
  httplib::SSLServer server{cert.cert_file.c_str(), cert.key_file.c_str()};
  std::atomic<int> calls{0};
  std::atomic<int> status{200};
  std::atomic<int> delay_ms{0};
  std::string body_override;
  std::mutex mu;
  std::string last_authorization, last_body;
  ServerThread thread;
  unsigned short port = 0;

  IntrospectionServer() {
    server.Post("/introspect", [this](const httplib::Request& req, httplib::Response& res) {
      ++calls;
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
      {
        std::lock_guard lock(mu);
        last_authorization = req.get_header_value("Authorization");
        last_body = req.body;
      }
      res.status = status;
      if (!body_override.empty()) {
        res.set_content(body_override, "application/json");
        return;
      }
      const std::string tok = req.get_param_value("token");
      json answer = {{"active", false}};
      if (req.get_header_value("Authorization") != "Basic Z2F0ZXdheTpzM2NyM3Q=") {
        res.status = 401;
      } else if (tok.rfind("refresh", 0) == 0) {
        answer = {{"active", true}, {"sub", "x"}, {"token_type", "refresh_token"}};
      } else if (tok.rfind("good", 0) == 0) {
        answer = {{"active", true}, {"sub", "user-" + tok}, {"scope", "read write"}, {"client_id", "app"},
                  {"iss", "https://as.test"}, {"aud", "api"}, {"exp", now_s() + 600}, {"token_type", "Bearer"}};
      }
      res.set_content(answer.dump(), "application/json");
    });
    port = thread.start(server);
  }
  auth::IntrospectionVerifierOptions options() const {
    auth::IntrospectionVerifierOptions o;
    o.endpoint = "https://127.0.0.1:" + std::to_string(port) + "/introspect";
    o.client_id = "gateway";
    o.client_secret = "s3cr3t";
    o.tls.ca_file = pki.ca_cert;
    o.timeout = 1s;
    return o;
  }
};

}  // namespace

TEST_CASE("introspection: active and inactive answers, client authentication, caching") {
  IntrospectionServer as;
  auth::IntrospectionVerifier v(as.options());
  const auto r = run_verify(v, "good-1");
  REQUIRE_MESSAGE(r.ok(), r.detail());
  CHECK(r->subject() == "user-good-1");
  CHECK(r->has_scope("write"));
  CHECK_FALSE(r->has("active"));
  {
    std::lock_guard lock(as.mu);
    CHECK(as.last_body == "token=good-1&token_type_hint=access_token");
  }
  CHECK(as.calls == 1);
  // Cached: answered without I/O, no second call.
  auto now = v.try_verify_now("good-1");
  REQUIRE(now);
  CHECK(now->ok());
  CHECK(run_verify(v, "good-1").ok());
  CHECK(as.calls == 1);

  CHECK(run_verify(v, "bad-1").error() == TokenError::inactive);
  CHECK(run_verify(v, "bad-1").error() == TokenError::inactive);  // inactive answers are cached too
  CHECK(as.calls == 2);
  // An active refresh token is not an access token.
  CHECK(run_verify(v, "refresh-1").error() == TokenError::wrong_type);
  CHECK(as.calls == 3);

  // Tokens that cannot be tokens are refused without a call.
  CHECK(run_verify(v, "has space").error() == TokenError::malformed);
  CHECK(run_verify(v, std::string(5000, 'a')).error() == TokenError::token_too_large);
  CHECK(as.calls == 3);

  SUBCASE("audience and issuer checks") {
    auto o = as.options();
    o.audiences = {"other"};
    auth::IntrospectionVerifier strict(o);
    CHECK(run_verify(strict, "good-2").error() == TokenError::wrong_audience);
    o.audiences = {"api"};
    o.issuers = {"https://elsewhere.test"};
    auth::IntrospectionVerifier strict2(o);
    CHECK(run_verify(strict2, "good-2").error() == TokenError::wrong_issuer);
  }
}

TEST_CASE("introspection fails closed: errors, garbage, wrong credentials, timeouts, no server") {
  IntrospectionServer as;
  auto unavailable = [](const auth::VerifyResult& r) { return r.error() == TokenError::introspection_unavailable; };
  SUBCASE("HTTP 500") {
    as.status = 500;
    auth::IntrospectionVerifier v(as.options());
    CHECK(unavailable(run_verify(v, "good-1")));
  }
  SUBCASE("wrong client secret: the endpoint says 401") {
    auto o = as.options();
    o.client_secret = "wrong";
    auth::IntrospectionVerifier v(o);
    CHECK(unavailable(run_verify(v, "good-1")));
  }
  SUBCASE("garbage answers") {
    for (const char* body : {"not json", "[]", "{\"active\":\"true\"}", "{\"active\":true,\"exp\":\"soon\"}"}) {
      CAPTURE(body);
      as.body_override = body;
      auth::IntrospectionVerifier v(as.options());
      CHECK(unavailable(run_verify(v, "good-1")));
    }
  }
  SUBCASE("a slow endpoint times out") {
    as.delay_ms = 1500;
    auto o = as.options();
    o.timeout = 300ms;
    auth::IntrospectionVerifier v(o);
    const auto start = std::chrono::steady_clock::now();
    const auto r = run_verify(v, "good-1");
    CHECK(unavailable(r));
    CHECK(r.detail().find("timed out") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - start < 1s);
  }
  SUBCASE("nothing listens") {
    auto o = as.options();
    o.endpoint = "https://127.0.0.1:1/introspect";
    auth::IntrospectionVerifier v(o);
    CHECK(unavailable(run_verify(v, "good-1")));
  }
  SUBCASE("an expired answer is refused, not cached") {
    as.body_override = json{{"active", true}, {"sub", "x"}, {"exp", now_s() - 3600}}.dump();
    auth::IntrospectionVerifier v(as.options());
    CHECK(run_verify(v, "good-1").error() == TokenError::expired);
  }
}

TEST_CASE("introspection: concurrent requests with one token share one call; discovery finds the endpoint") {
  IntrospectionServer as;
  as.delay_ms = 300;
  auth::IntrospectionVerifier v(as.options());
  std::vector<std::future<bool>> results;
  for (int i = 0; i < 8; ++i) {
    results.push_back(std::async(std::launch::async, [&] { return run_verify(v, "good-shared").ok(); }));
  }
  for (auto& f : results) CHECK(f.get());
  CHECK(as.calls == 1);
  CHECK(v.stats().calls == 1);

  // Discovery: the key server's metadata names an introspection endpoint on the same host.
  KeyServer ks(json{{"keys", json::array()}});
  auto o = as.options();
  o.endpoint.clear();
  o.issuer = ks.issuer();
  o.tls.ca_file = ks.pki.ca_cert;
  auth::IntrospectionVerifier discovered(o);
  const auto r = run_verify(discovered, "anything");
  REQUIRE_MESSAGE(r.ok(), r.detail());
  CHECK(r->subject() == "via-discovery");
}
