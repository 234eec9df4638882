// The admin API's pieces that need no socket: secret redaction for GET /config and the bearer
// token check.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin/bearer_token_check.hpp"
#include "admin/redact.hpp"
#include "gatehouse/exchange.hpp"
#include "gatehouse/testing.hpp"

using nlohmann::json;
using namespace gatehouse;
using detail::is_secret_name;
using detail::redact_secrets;
using detail::redact_url_credentials;

namespace {
const std::string R = "[redacted]";
}

TEST_CASE("admin redaction: secret member names") {
  for (const char* name : {"secret", "client_secret", "password", "Password", "token", "key", "keys", "private_key",
                           "api_key", "x-api-key", "X-Api-Key", "authorization", "Authorization", "cookie",
                           "set-cookie", "proxy-authorization", "hmac_key", "refresh_token", "x-auth-token",
                           "db_password", "signing_key"})
    CHECK_MESSAGE(is_secret_name(name), name);
  // Names that only say where a secret is, or which header carries it, stay visible.
  for (const char* name : {"token_file", "key_file", "keys_file", "client_secret_env", "token_env", "key_id",
                           "jwks_uri", "token_endpoint", "cert", "issuer", "client_id", "max_token_bytes",
                           "token_minters", "forward_token_header", "name", "path", "keyboard", "monkey"})
    CHECK_MESSAGE(!is_secret_name(name), name);
}

TEST_CASE("admin redaction: values of secret members, whole objects and arrays included") {
  const json in = json::parse(R"({
    "listeners": [ { "port": 8443, "tls": { "certificates": [ { "cert": "/etc/gh/cert.pem", "key": "/etc/gh/key.pem" } ] } } ],
    "verifiers": {
      "idp": { "type": "introspection", "endpoint": "https://idp/introspect", "client_id": "gw",
               "client_secret": "s3cr3t-value", "client_secret_env": "IDP_SECRET" },
      "partners": { "type": "api_keys", "keys": [ { "sha256": "abcd", "principal": "p" } ] }
    },
    "middleware": [ { "name": "header_rewrite", "options": { "request": {
        "set": { "Authorization": "Bearer upstream-token-value", "x-tenant": "acme" } } } } ],
    "routes": [ { "path": "/a", "upstream": "u", "middleware": [
        { "name": "authenticate", "options": { "forward_token": true, "credential": { "header": "x-api-key" } } } ] } ],
    "admin": { "token_file": "/run/secrets/admin-token" }
  })");
  const json out = redact_secrets(in);
  const std::string text = out.dump();
  CHECK(text.find("s3cr3t-value") == std::string::npos);
  CHECK(text.find("upstream-token-value") == std::string::npos);
  CHECK(text.find("abcd") == std::string::npos);
  CHECK(out["listeners"][0]["tls"]["certificates"][0]["key"] == R);
  CHECK(out["listeners"][0]["tls"]["certificates"][0]["cert"] == "/etc/gh/cert.pem");
  CHECK(out["verifiers"]["idp"]["client_secret"] == R);
  CHECK(out["verifiers"]["idp"]["client_secret_env"] == "IDP_SECRET");
  CHECK(out["verifiers"]["idp"]["client_id"] == "gw");
  CHECK(out["verifiers"]["partners"]["keys"] == R);
  CHECK(out["verifiers"]["partners"]["type"] == "api_keys");
  CHECK(out["middleware"][0]["options"]["request"]["set"]["Authorization"] == R);
  CHECK(out["middleware"][0]["options"]["request"]["set"]["x-tenant"] == "acme");
  // A flag is never a secret; a header name is not the header's value.
  CHECK(out["routes"][0]["middleware"][0]["options"]["forward_token"] == true);
  CHECK(out["routes"][0]["middleware"][0]["options"]["credential"]["header"] == "x-api-key");
  CHECK(out["admin"]["token_file"] == "/run/secrets/admin-token");
}

TEST_CASE("admin redaction: private JWK members, header pairs, credential strings, URLs") {
  const json in = json::parse(R"({
    "jwk": { "kty": "EC", "crv": "P-256", "x": "xx", "y": "yy", "d": "private-d" },
    "inline": { "kty": "oct", "k": "hmac-secret", "kid": "k1" },
    "headers": [ { "name": "Authorization", "value": "Basic dXNlcjpwdw==" }, { "name": "x-env", "value": "prod" } ],
    "note": "Bearer abc.def.ghi",
    "pem": "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n",
    "redis": "redis://user:hunter2@10.0.0.5:6379/0",
    "plain_url": "https://example.com/a@b"
  })");
  const json out = redact_secrets(in);
  CHECK(out["jwk"] == R);  // "jwk" itself names key material
  CHECK(out["inline"]["k"] == R);
  CHECK(out["inline"]["kid"] == "k1");
  CHECK(out["headers"][0]["value"] == R);
  CHECK(out["headers"][1]["value"] == "prod");
  CHECK(out["note"] == R);
  CHECK(out["pem"] == R);
  CHECK(out["redis"] == "redis://[redacted]@10.0.0.5:6379/0");
  CHECK(out["plain_url"] == "https://example.com/a@b");  // '@' after the authority is not userinfo

  const json ec_key = redact_secrets(json::parse(R"({"k": {"kty": "RSA", "n": "nn", "e": "AQAB", "p": "pp", "q": "qq"}})"));
  CHECK(ec_key["k"]["n"] == "nn");
  CHECK(ec_key["k"]["p"] == R);
  CHECK(ec_key["k"]["q"] == R);
}

TEST_CASE("admin redaction: URL credentials in free text") {
  CHECK(redact_url_credentials("no url here") == "no url here");
  CHECK(redact_url_credentials("http://a:b@h/x and https://c@d:1?q") == "http://[redacted]@h/x and https://[redacted]@d:1?q");
  CHECK(redact_url_credentials("https://host:443/path") == "https://host:443/path");
  CHECK(redact_url_credentials("://@") == "://[redacted]@");
}

TEST_CASE("admin redaction: scalars and empty documents pass through") {
  CHECK(redact_secrets(json(3)) == json(3));
  CHECK(redact_secrets(json::object()) == json::object());
  CHECK(redact_secrets(json::parse(R"({"token": null, "password": 1234})")) == json::parse(R"({"token": null, "password": "[redacted]"})"));
}

TEST_CASE("admin token check: only the exact bearer token passes, compared by digest") {
  const std::string token = "0123456789abcdef-admin";
  const detail::BearerTokenCheck check(token);
  auto run = [&](std::initializer_list<std::pair<std::string_view, std::string_view>> headers) {
    Exchange ex("GET", "/metrics", headers);
    return testing::run(check.on_request(ex));
  };
  const std::string good = "Bearer " + token;
  CHECK(run({{"authorization", good}}).is_next());
  const std::string lower_scheme = "bearer " + token;
  CHECK(run({{"authorization", lower_scheme}}).is_next());
  for (const std::string& bad : std::vector<std::string>{"", "Bearer", "Bearer ", "Basic " + token,
                                                         "Bearer " + token + "x", "Bearer " + token.substr(1), token}) {
    Flow f = run({{"authorization", bad}});
    REQUIRE(f.is_response());
    CHECK(f.response().status() == Status::unauthorized);
    CHECK(f.response().headers().get("www-authenticate").value_or("").starts_with("Bearer realm=\"gatehouse-admin\""));
  }
  CHECK(run({}).is_response());
  CHECK(run({{"authorization", good}, {"authorization", good}}).is_response());  // two: refused
}

TEST_CASE("admin token check: weak tokens are refused up front, without quoting them") {
  CHECK(detail::admin_token_problem("short") != nullptr);
  CHECK(detail::admin_token_problem(std::string(16, 'a')) == nullptr);
  CHECK(detail::admin_token_problem("0123456789abcdef ghi") != nullptr);  // a space
  CHECK(detail::admin_token_problem(std::string(4097, 'a')) != nullptr);
  try {
    detail::BearerTokenCheck weak("tiny-secret");
    FAIL("a short token was accepted");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("tiny-secret") == std::string::npos);
  }
}
