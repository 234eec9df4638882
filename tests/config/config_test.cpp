#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "gatehouse/config.hpp"
#include "gatehouse/exchange.hpp"
#include "gatehouse/middleware/header_rewrite.hpp"
#include "support/temp_dir.hpp"
#include "support/test_certs.hpp"
#include "config_error.hpp"

using gatehouse::ConfigError;
using gatehouse::GatewayConfig;
using gatehouse::load_config;
using gatehouse::MiddlewareRegistry;
using gatehouse::PathEscapeAction;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using gatehouse::test::error_of;

// A scratch directory for dummy PEM files: the loader only checks that they can be read.
using gatehouse::test::TempDir;

// The smallest valid document, to which tests add the part they are about.
json minimal() {
  return json::parse(R"({
    "listeners": [ { "port": 8080 } ],
    "upstreams": { "users": { "endpoints": ["127.0.0.1:9001"] },
                   "orders": { "endpoints": ["127.0.0.1:9002"] } },
    "routes": [ { "path": "/users", "upstream": "users" } ]
  })");
}

// Runs the loader and returns the error it must raise.
ConfigError error_of(const char* text) { return error_of(std::string(text)); }

bool has(const ConfigError& e, const std::string& s) { return e.reason().find(s) != std::string::npos; }

}  // namespace

TEST_CASE("a full configuration maps onto options, listeners, upstreams and routes") {
  TempDir tmp;
  gatehouse::test::TestPki pki;
  const auto server = pki.issue("server", {"localhost"});
  const auto client = pki.issue("client", {}, {}, true);
  const auto& crt = server.cert_file;
  const auto& key = server.key_file;
  const auto& ca = pki.ca_cert;
  const auto log = (tmp.dir / "access.log").string();
  json j = json::parse(R"({
    "workers": 2,
    "drain_timeout_ms": 5000,
    "trusted_proxies": ["10.0.0.0/8", "::1/128"],
    "request_id_header": "x-trace-id",
    "limits": { "max_uri_bytes": 4096, "max_header_bytes": 16384, "max_header_count": 50,
                "max_body_bytes": 0, "header_timeout_ms": 1000, "idle_timeout_ms": 2000,
                "request_timeout_ms": 3000, "send_timeout_ms": 4000 },
    "listeners": [ { "address": "127.0.0.1", "port": 0, "backlog": 128 },
                   { "address": "::1", "port": 8443,
                     "tls": { "certificates": [ {"cert": "CRT", "key": "KEY"} ],
                              "handshake_timeout_ms": 3000, "client_ca": "CA" } } ],
    "upstreams": { "users": { "endpoints": ["127.0.0.1:9001", "[::1]:9002", "users.internal:80"],
                   "connect_timeout_ms": 500, "try_timeout_ms": 1500, "total_timeout_ms": 4500,
                   "connect_retries": 3, "max_idle_per_worker": 8, "max_idle_time_ms": 7000,
                   "max_connection_age_ms": 70000, "resolve_interval_ms": 9000,
                   "tls": { "ca": "CA", "server_name": "users.example.com",
                            "client_cert": "CRT", "client_key": "KEY" } },
                   "orders": { "endpoints": ["127.0.0.1:9003"] } },
    "middleware": [ { "name": "access_log", "options": { "path": "LOG", "queue_capacity": 64 } } ],
    "routes": [ { "name": "users", "host": "*.example.com", "path": "/users", "prefix": true,
                  "methods": ["GET", "POST"], "rewrite_prefix": "/v1/users", "upstream": "users",
                  "middleware": [ { "name": "header_rewrite", "options": {
                      "request": { "set": {"x-a": "1"}, "append": {"x-b": "2"}, "remove": ["x-c"] },
                      "response": { "remove": ["server"] } } } ] },
                { "path": "/orders", "upstream": "orders" },
                { "name": "health", "path": "/healthz", "prefix": false,
                  "respond": { "status": 200, "body": "ok\n", "content_type": "text/plain",
                               "headers": {"cache-control": "no-store"} } } ]
  })");
  j["listeners"][1]["tls"]["certificates"][0] = {{"cert", crt}, {"key", key}};
  j["listeners"][1]["tls"]["client_ca"] = ca;
  j["upstreams"]["users"]["tls"]["ca"] = ca;
  j["upstreams"]["users"]["tls"]["client_cert"] = client.cert_file;
  j["upstreams"]["users"]["tls"]["client_key"] = client.key_file;
  j["middleware"][0]["options"]["path"] = log;

  const GatewayConfig c = load_config(j.dump(2));

  CHECK(c.options.workers == 2);
  CHECK(c.options.drain_timeout == std::chrono::milliseconds(5000));
  CHECK(c.options.trusted_proxies == std::vector<std::string>{"10.0.0.0/8", "::1/128"});
  CHECK(c.options.request_id_header == "x-trace-id");
  CHECK(c.options.limits.max_uri_bytes == 4096);
  CHECK(c.options.limits.max_header_bytes == 16384);
  CHECK(c.options.limits.max_header_count == 50);
  CHECK(c.options.limits.max_body_bytes == 0);
  CHECK(c.options.limits.header_timeout == std::chrono::milliseconds(1000));
  CHECK(c.options.limits.idle_timeout == std::chrono::milliseconds(2000));
  CHECK(c.options.limits.request_timeout == std::chrono::milliseconds(3000));
  CHECK(c.options.limits.send_timeout == std::chrono::milliseconds(4000));

  REQUIRE(c.listeners.size() == 2);
  CHECK(c.listeners[0].address == "127.0.0.1");
  CHECK(c.listeners[0].port == 0);
  CHECK(c.listeners[0].backlog == 128);
  CHECK_FALSE(c.listeners[0].tls);
  CHECK(c.listeners[1].address == "::1");
  CHECK(c.listeners[1].port == 8443);
  CHECK(c.listeners[1].backlog == 1024);
  REQUIRE(c.listeners[1].tls);
  REQUIRE(c.listeners[1].tls->certificates.size() == 1);
  CHECK(c.listeners[1].tls->certificates[0].cert_file == crt);
  CHECK(c.listeners[1].tls->certificates[0].key_file == key);
  CHECK(c.listeners[1].tls->handshake_timeout == std::chrono::milliseconds(3000));
  CHECK(c.listeners[1].tls->client_ca_file == ca);

  REQUIRE(c.upstreams.size() == 2);
  const auto& users = c.upstreams.at("users");
  REQUIRE(users);
  CHECK(users->name() == "users");
  const auto& uo = users->options();
  CHECK(uo.endpoints == std::vector<std::string>{"127.0.0.1:9001", "[::1]:9002", "users.internal:80"});
  CHECK(uo.connect_timeout == std::chrono::milliseconds(500));
  CHECK(uo.try_timeout == std::chrono::milliseconds(1500));
  CHECK(uo.total_timeout == std::chrono::milliseconds(4500));
  CHECK(uo.connect_retries == 3);
  CHECK(uo.max_idle_per_worker == 8);
  CHECK(uo.max_idle_time == std::chrono::milliseconds(7000));
  CHECK(uo.max_connection_age == std::chrono::milliseconds(70000));
  CHECK(uo.resolve_interval == std::chrono::milliseconds(9000));
  REQUIRE(uo.tls);
  CHECK(uo.tls->ca_file == ca);
  CHECK(uo.tls->server_name == "users.example.com");
  CHECK(uo.tls->client_certificate.cert_file == client.cert_file);
  CHECK(uo.tls->client_certificate.key_file == client.key_file);
  CHECK_FALSE(c.upstreams.at("orders")->options().tls);
  CHECK(c.upstreams.at("orders")->options().connect_timeout == std::chrono::milliseconds(2000));

  REQUIRE(c.middleware.size() == 1);
  CHECK(c.middleware[0]);

  REQUIRE(c.routes.size() == 3);
  const auto& r0 = c.routes[0];
  CHECK(r0.name == "users");
  CHECK(r0.host == "*.example.com");
  CHECK(r0.path == "/users");
  CHECK(r0.prefix);
  CHECK(r0.methods == std::vector<std::string>{"GET", "POST"});
  CHECK(r0.rewrite_prefix == "/v1/users");
  CHECK(r0.origin.upstream() == users);
  CHECK_FALSE(r0.origin.handler());
  REQUIRE(r0.middleware.size() == 1);
  CHECK(dynamic_cast<const gatehouse::HeaderRewrite*>(r0.middleware[0].get()) != nullptr);

  CHECK(c.routes[1].name == "route1");  // default name from the index
  CHECK(c.routes[1].origin.upstream() == c.upstreams.at("orders"));
  CHECK_FALSE(c.routes[1].rewrite_prefix);
  CHECK(c.routes[1].methods.empty());
  CHECK(c.routes[1].host.empty());

  const auto& health = c.routes[2];
  CHECK(health.name == "health");
  CHECK_FALSE(health.prefix);
  CHECK_FALSE(health.origin.upstream());
  REQUIRE(health.origin.handler());
}

TEST_CASE("defaults of a minimal configuration") {
  const GatewayConfig c = load_config(minimal().dump());
  const gatehouse::GatewayOptions defaults;
  CHECK(c.options.workers == defaults.workers);
  CHECK(c.options.drain_timeout == defaults.drain_timeout);
  CHECK(c.options.trusted_proxies.empty());
  CHECK(c.options.request_id_header == "x-request-id");
  CHECK(c.options.limits.max_body_bytes == defaults.limits.max_body_bytes);
  REQUIRE(c.listeners.size() == 1);
  CHECK(c.listeners[0].address == "127.0.0.1");
  CHECK(c.listeners[0].backlog == 1024);
  REQUIRE(c.routes.size() == 1);
  CHECK(c.routes[0].name == "route0");
  CHECK(c.routes[0].prefix);
  CHECK(c.middleware.empty());
}

TEST_CASE("a respond route builds a handler that answers with the configured response") {
  json j = minimal();
  j["routes"].push_back(json::parse(R"({ "name": "health", "path": "/healthz", "prefix": false,
      "respond": { "status": 503, "body": "down\n", "content_type": "text/plain; charset=utf-8",
                   "headers": {"cache-control": "no-store", "x-a": "1"} } })"));
  j["routes"].push_back(json::parse(R"({ "path": "/empty", "respond": { "status": 204 } })"));
  j["routes"].push_back(json::parse(R"({ "path": "/default", "respond": {} })"));
  const GatewayConfig c = load_config(j.dump());
  REQUIRE(c.routes.size() == 4);

  gatehouse::Exchange ex("GET", "/healthz");
  auto flow = c.routes[1].origin.handler()(ex);
  REQUIRE(flow.is_response());
  CHECK_FALSE(flow.wants_error_body());
  CHECK(flow.response().status() == 503);
  CHECK(flow.response().body() == "down\n");
  CHECK(flow.response().headers().get("content-type") == "text/plain; charset=utf-8");
  CHECK(flow.response().headers().get("cache-control") == "no-store");
  CHECK(flow.response().headers().get("x-a") == "1");

  // Each call hands out its own copy.
  auto again = c.routes[1].origin.handler()(ex);
  again.response().headers().set("x-a", "changed");
  CHECK(c.routes[1].origin.handler()(ex).response().headers().get("x-a") == "1");

  auto empty = c.routes[2].origin.handler()(ex);
  REQUIRE(empty.is_response());
  CHECK(empty.response().status() == 204);
  CHECK(empty.response().body().empty());
  CHECK_FALSE(empty.response().headers().contains("content-type"));

  auto def = c.routes[3].origin.handler()(ex);
  REQUIRE(def.is_response());
  CHECK(def.response().status() == 200);
}

TEST_CASE("JSON syntax errors give line and column") {
  auto e = error_of("{\n  \"listeners\": [],\n  }");
  CHECK(e.path() == "");
  CHECK(has(e, "line 3, column 3"));

  e = error_of("{\"a\": 1,\n\"b\": tru }");
  CHECK(e.path() == "");
  CHECK(has(e, "line 2, column"));

  e = error_of("");
  CHECK(e.path() == "");
  CHECK(has(e, "line 1, column 1"));

  e = error_of("{\n\"workers\": 1\n");  // unexpected end of input
  CHECK(has(e, "line 3, column 1"));

  e = error_of("[1, 2]");
  CHECK(e.path() == "");
  CHECK(has(e, "expected an object"));
}

TEST_CASE("comments are allowed") {
  CHECK_NOTHROW(load_config(R"({
    // one listener
    "listeners": [ { "port": 8080 } ], /* and one route */
    "routes": [ { "respond": {} } ]
  })"));
}

TEST_CASE("duplicate keys are reported at their path") {
  auto e = error_of(R"({"workers": 1, "workers": 2})");
  CHECK(e.path() == "/workers");
  CHECK(has(e, "duplicate key \"workers\""));

  e = error_of(R"({"listeners": [ {"port": 1}, {"port": 2, "address": "::1", "port": 3} ]})");
  CHECK(e.path() == "/listeners/1/port");
  CHECK(has(e, "duplicate key \"port\""));

  e = error_of(R"({"listeners": [{"port": 1}], "upstreams": {"a": {"endpoints": ["x:1"]},
                   "b/c": {"endpoints": [], "endpoints": []}}})");
  CHECK(e.path() == "/upstreams/b~1c/endpoints");

  e = error_of(R"({"routes": [ [1, [2, 3]], {"x": [{}, {"a": 1, "a": 2}]} ]})");
  CHECK(e.path() == "/routes/1/x/1/a");

  // The same key in different objects is fine.
  CHECK_NOTHROW(load_config(R"({"listeners": [{"port": 1}, {"port": 2}],
                               "routes": [{"path": "/a", "respond": {}}, {"path": "/b", "respond": {}}]})"));
}

TEST_CASE("unknown keys suggest the closest known key") {
  json j = minimal();
  j["routes"][0]["prefx"] = true;
  auto e = error_of(j);
  CHECK(e.path() == "/routes/0/prefx");
  CHECK(e.reason() == "unknown key \"prefx\" (did you mean \"prefix\"?)");

  j = minimal();
  j["wrokers"] = 2;  // transposition
  e = error_of(j);
  CHECK(e.path() == "/wrokers");
  CHECK(has(e, "did you mean \"workers\""));

  j = minimal();
  j["listeners"][0]["colour"] = "blue";  // nothing close: list the allowed keys
  e = error_of(j);
  CHECK(e.path() == "/listeners/0/colour");
  CHECK(has(e, "unknown key \"colour\""));
  CHECK_FALSE(has(e, "did you mean"));
  CHECK(has(e, "address, backlog, ip_filter, max_connections, max_connections_per_client, name, path_policy, port, tls, trace_context"));

  j = minimal();
  j["limits"] = {{"max_body_byte", 1}};
  e = error_of(j);
  CHECK(e.path() == "/limits/max_body_byte");
  CHECK(has(e, "did you mean \"max_body_bytes\""));

  j = minimal();
  j["upstreams"]["users"]["tls"] = {{"server_nam", "x"}};
  e = error_of(j);
  CHECK(e.path() == "/upstreams/users/tls/server_nam");
  CHECK(has(e, "did you mean \"server_name\""));
}

TEST_CASE("types and ranges are strict") {
  json j = minimal();
  j["listeners"][0]["port"] = "80";
  auto e = error_of(j);
  CHECK(e.path() == "/listeners/0/port");
  CHECK(e.reason() == "expected an integer in 0..65535, got \"80\"");

  j["listeners"][0]["port"] = 65536;
  e = error_of(j);
  CHECK(e.path() == "/listeners/0/port");
  CHECK(has(e, "got 65536"));

  j["listeners"][0]["port"] = 80.0;
  CHECK(error_of(j).path() == "/listeners/0/port");
  j["listeners"][0]["port"] = -1;
  CHECK(error_of(j).path() == "/listeners/0/port");
  j["listeners"][0]["port"] = true;
  CHECK(error_of(j).path() == "/listeners/0/port");

  j = minimal();
  j["workers"] = 1.5;
  e = error_of(j);
  CHECK(e.path() == "/workers");
  CHECK(has(e, "expected an integer"));
  CHECK(has(e, "got 1.5"));

  j = minimal();
  j["drain_timeout_ms"] = 0;
  e = error_of(j);
  CHECK(e.path() == "/drain_timeout_ms");
  CHECK(has(e, "in 1.."));

  j = minimal();
  j["limits"] = {{"idle_timeout_ms", -5}};
  CHECK(error_of(j).path() == "/limits/idle_timeout_ms");
  j["limits"] = {{"max_body_bytes", "1M"}};
  CHECK(error_of(j).path() == "/limits/max_body_bytes");
  j["limits"] = {{"max_header_count", 0}};
  CHECK(error_of(j).path() == "/limits/max_header_count");
  j["limits"] = {{"max_uri_bytes", 1e20}};  // too big for an integer: parsed as a float
  CHECK(error_of(j).path() == "/limits/max_uri_bytes");
  j["limits"] = 5;
  e = error_of(j);
  CHECK(e.path() == "/limits");
  CHECK(has(e, "expected an object"));

  j = minimal();
  j["routes"][0]["prefix"] = "true";
  e = error_of(j);
  CHECK(e.path() == "/routes/0/prefix");
  CHECK(e.reason() == "expected a boolean, got \"true\"");

  j = minimal();
  j["routes"][0]["prefix"] = 1;
  CHECK(error_of(j).path() == "/routes/0/prefix");

  j = minimal();
  j["upstreams"]["users"]["connect_retries"] = 101;
  CHECK(error_of(j).path() == "/upstreams/users/connect_retries");
  j = minimal();
  j["upstreams"]["users"]["try_timeout_ms"] = 0;
  CHECK(error_of(j).path() == "/upstreams/users/try_timeout_ms");
  j = minimal();
  j["trusted_proxies"] = "10.0.0.0/8";
  e = error_of(j);
  CHECK(e.path() == "/trusted_proxies");
  CHECK(has(e, "expected an array"));
}

TEST_CASE("listeners") {
  json j = minimal();
  j.erase("listeners");
  auto e = error_of(j);
  CHECK(e.path() == "/listeners");
  CHECK(has(e, "missing required key \"listeners\""));

  j["listeners"] = json::array();
  e = error_of(j);
  CHECK(e.path() == "/listeners");
  CHECK(has(e, "at least one listener"));

  j["listeners"] = {{{"address", "127.0.0.1"}}};
  e = error_of(j);
  CHECK(e.path() == "/listeners/0/port");
  CHECK(has(e, "missing required key \"port\""));

  j["listeners"] = {{{"address", "localhost"}, {"port", 80}}};
  e = error_of(j);
  CHECK(e.path() == "/listeners/0/address");
  CHECK(has(e, "\"localhost\""));

  j["listeners"] = {{{"address", "::"}, {"port", 80}}, {{"address", "0.0.0.0"}, {"port", 80}}};
  CHECK_NOTHROW(load_config(j.dump()));

  j["listeners"] = {{{"port", 80}}, {{"address", "127.0.0.1"}, {"port", 80}}};
  e = error_of(j);
  CHECK(e.path() == "/listeners/1/port");
  CHECK(has(e, "duplicate listener 127.0.0.1:80"));
  CHECK(has(e, "/listeners/0"));

  j["listeners"] = {{{"port", 0}}, {{"port", 0}}};  // free ports never collide
  CHECK_NOTHROW(load_config(j.dump()));

  j["listeners"] = {{{"port", 80}, {"backlog", 0}}};
  CHECK(error_of(j).path() == "/listeners/0/backlog");
}

TEST_CASE("a listener's path_policy") {
  json j = minimal();
  auto c = load_config(j.dump());
  REQUIRE(c.listeners.size() == 1);
  CHECK(c.listeners[0].path_policy.merge_slashes);
  CHECK(c.listeners[0].path_policy.encoded_slash == PathEscapeAction::reject);
  CHECK(c.listeners[0].path_policy.backslash == PathEscapeAction::reject);
  CHECK(c.listeners[0].path_policy.encoded_nul == PathEscapeAction::reject);

  j["listeners"][0]["path_policy"] = {{"merge_slashes", false}, {"encoded_slash", "keep_encoded"},
                                      {"backslash", "as_slash"}, {"encoded_nul", "keep_encoded"}};
  c = load_config(j.dump());
  CHECK_FALSE(c.listeners[0].path_policy.merge_slashes);
  CHECK(c.listeners[0].path_policy.encoded_slash == PathEscapeAction::keep_encoded);
  CHECK(c.listeners[0].path_policy.backslash == PathEscapeAction::as_slash);
  CHECK(c.listeners[0].path_policy.encoded_nul == PathEscapeAction::keep_encoded);

  j["listeners"][0]["path_policy"] = {{"encoded_nul", "as_slash"}};
  auto e = error_of(j);
  CHECK(e.path() == "/listeners/0/path_policy/encoded_nul");
  CHECK(has(e, "expected \"reject\" or \"keep_encoded\", got \"as_slash\""));
  j["listeners"][0]["path_policy"] = {{"encoded_slash", "decode"}};
  CHECK(error_of(j).path() == "/listeners/0/path_policy/encoded_slash");
  j["listeners"][0]["path_policy"] = {{"merge_slash", true}};
  e = error_of(j);
  CHECK(e.path() == "/listeners/0/path_policy/merge_slash");
  CHECK(has(e, "did you mean \"merge_slashes\""));
}

TEST_CASE("route paths must be in the canonical form requests are matched in") {
  json j = minimal();
  j["routes"][0]["path"] = "/a/../admin";
  auto e = error_of(j);
  CHECK(e.path() == "/routes/0/path");
  CHECK(has(e, "write \"/admin\""));
  j["routes"][0]["path"] = "/%7euser";
  CHECK(has(error_of(j), "write \"/~user\""));
  j["routes"][0]["path"] = "/a%zz";
  CHECK(has(error_of(j), "invalid percent-escape"));
  for (const char* ok : {"/.well-known/jwks.json", "/files%2Fx", "/a//b", "/a;v=1"}) {
    CAPTURE(ok);
    j["routes"][0]["path"] = ok;
    CHECK_NOTHROW(load_config(j.dump()));
  }
}

TEST_CASE("TLS files must exist and be readable") {
  TempDir tmp;
  const auto crt = tmp.file("s.crt"), key = tmp.file("s.key");
  const auto missing = (tmp.dir / "missing.pem").string();

  json j = minimal();
  j["listeners"][0]["tls"] = {{"certificates", {{{"cert", crt}, {"key", missing}}}}};
  auto e = error_of(j);
  CHECK(e.path() == "/listeners/0/tls/certificates/0/key");
  CHECK(has(e, missing));
  CHECK(has(e, "No such file or directory"));

  j["listeners"][0]["tls"] = {{"certificates", json::array()}};
  e = error_of(j);
  CHECK(e.path() == "/listeners/0/tls/certificates");
  CHECK(has(e, "at least one certificate"));

  j["listeners"][0]["tls"] = json::object();
  e = error_of(j);
  CHECK(e.path() == "/listeners/0/tls/certificates");
  CHECK(has(e, "missing required key"));

  j["listeners"][0]["tls"] = {{"certificates", {{{"cert", crt}}}}};
  CHECK(error_of(j).path() == "/listeners/0/tls/certificates/0/key");

  j["listeners"][0]["tls"] = {{"certificates", {{{"cert", tmp.dir.string()}, {"key", key}}}}};
  e = error_of(j);
  CHECK(e.path() == "/listeners/0/tls/certificates/0/cert");
  CHECK(has(e, "directory"));

  j["listeners"][0]["tls"] = {{"certificates", {{{"cert", crt}, {"key", key}}}}, {"client_ca", missing}};
  CHECK(error_of(j).path() == "/listeners/0/tls/client_ca");

  j["listeners"][0]["tls"] = {{"certificates", {{{"cert", crt}, {"key", key}}}}, {"handshake_timeout_ms", 0}};
  CHECK(error_of(j).path() == "/listeners/0/tls/handshake_timeout_ms");

  if (::geteuid() != 0) {  // root reads anything
    const auto secret = tmp.file("secret.key");
    fs::permissions(secret, fs::perms::none);
    j["listeners"][0]["tls"] = {{"certificates", {{{"cert", crt}, {"key", secret}}}}};
    e = error_of(j);
    CHECK(e.path() == "/listeners/0/tls/certificates/0/key");
    CHECK(has(e, "Permission denied"));
  }

  // Upstream TLS: client_cert and client_key go together; "" means not set.
  j = minimal();
  j["upstreams"]["users"]["tls"] = {{"client_cert", crt}};
  e = error_of(j);
  CHECK(e.path() == "/upstreams/users/tls/client_key");
  CHECK(has(e, "\"client_cert\" and \"client_key\""));

  j["upstreams"]["users"]["tls"] = {{"client_cert", ""}, {"client_key", key}};
  CHECK(error_of(j).path() == "/upstreams/users/tls/client_cert");

  j["upstreams"]["users"]["tls"] = {{"ca", missing}};
  CHECK(error_of(j).path() == "/upstreams/users/tls/ca");

  j["upstreams"]["users"]["tls"] = {{"ca", ""}, {"server_name", ""}, {"client_cert", ""}, {"client_key", ""}};
  const auto c = load_config(j.dump());
  REQUIRE(c.upstreams.at("users")->options().tls);
  CHECK(c.upstreams.at("users")->options().tls->ca_file.empty());
}

TEST_CASE("TLS files are loaded at load time: bad PEM and mismatched keys name their key") {
  gatehouse::test::TestPki pki;
  TempDir tmp;
  const auto a = pki.issue("a", {"a.test"});
  const auto b = pki.issue("b", {"b.test"});
  const auto garbage = tmp.file("garbage.pem", "not a certificate\n");

  json j = minimal();
  j["listeners"][0]["tls"] = {{"certificates", {{{"cert", a.cert_file}, {"key", a.key_file}}}}};
  CHECK_NOTHROW(load_config(j.dump()));

  j["listeners"][0]["tls"] = {{"certificates", {{{"cert", a.cert_file}, {"key", a.key_file}},
                                                {{"cert", b.cert_file}, {"key", a.key_file}}}}};
  auto e = error_of(j);
  CHECK(e.path() == "/listeners/0/tls/certificates/1/key");

  j["listeners"][0]["tls"] = {{"certificates", {{{"cert", garbage}, {"key", a.key_file}}}}};
  e = error_of(j);
  CHECK(e.path() == "/listeners/0/tls/certificates/0/cert");
  CHECK(has(e, garbage));

  j["listeners"][0]["tls"] = {{"certificates", {{{"cert", a.cert_file}, {"key", a.key_file}}}},
                              {"client_ca", garbage}};
  CHECK(error_of(j).path() == "/listeners/0/tls/client_ca");

  j = minimal();
  j["upstreams"]["users"]["tls"] = {{"ca", garbage}};
  e = error_of(j);
  CHECK(e.path() == "/upstreams/users/tls/ca");
  CHECK(has(e, garbage));
}

TEST_CASE("upstreams and their endpoints") {
  json j = minimal();
  j["upstreams"]["users"]["endpoints"] = {"127.0.0.1:9001", "127.0.0.1:0"};
  auto e = error_of(j);
  CHECK(e.path() == "/upstreams/users/endpoints/1");
  CHECK(has(e, "\"127.0.0.1:0\""));
  CHECK(has(e, "1..65535"));

  const char* bad[] = {"127.0.0.1", "::1:80", "[::1]80", "[::1", "[nope]:80", ":80", "host:", "host:+80",
                       "host:99999", "bad_host:80", "999.1.1.1:80", "a b:80", ""};
  for (const char* ep : bad) {
    CAPTURE(ep);
    j["upstreams"]["users"]["endpoints"] = {"h:1", ep};
    e = error_of(j);
    CHECK(e.path() == "/upstreams/users/endpoints/1");
    CHECK(has(e, "invalid endpoint"));
  }

  j["upstreams"]["users"]["endpoints"] = json::array();
  e = error_of(j);
  CHECK(e.path() == "/upstreams/users/endpoints");
  CHECK(has(e, "at least one endpoint"));

  j["upstreams"]["users"].erase("endpoints");
  CHECK(error_of(j).path() == "/upstreams/users/endpoints");

  j["upstreams"]["users"]["endpoints"] = {9001};
  e = error_of(j);
  CHECK(e.path() == "/upstreams/users/endpoints/0");
  CHECK(has(e, "expected a string"));

  j = minimal();
  j["upstreams"][""] = {{"endpoints", {"127.0.0.1:1"}}};
  e = error_of(j);
  CHECK(e.path() == "/upstreams/");
  CHECK(has(e, "must not be empty"));

  j = minimal();
  j["upstreams"] = json::array();
  CHECK(error_of(j).path() == "/upstreams");
}

TEST_CASE("routes") {
  json j = minimal();
  j["routes"][0]["upstream"] = "userz";
  auto e = error_of(j);
  CHECK(e.path() == "/routes/0/upstream");
  CHECK(has(e, "unknown upstream \"userz\"; defined: orders, users"));
  CHECK(has(e, "did you mean \"users\""));

  j = minimal();
  j.erase("upstreams");
  e = error_of(j);
  CHECK(e.path() == "/routes/0/upstream");
  CHECK(has(e, "unknown upstream \"users\""));

  j = minimal();
  j.erase("routes");
  e = error_of(j);
  CHECK(e.path() == "/routes");
  CHECK(has(e, "at least one route"));
  j["routes"] = json::array();
  CHECK(error_of(j).path() == "/routes");

  j = minimal();
  j["routes"].push_back({{"path", "/x"}});
  e = error_of(j);
  CHECK(e.path() == "/routes/1");
  CHECK(has(e, "\"upstream\""));
  CHECK(has(e, "\"respond\""));

  j = minimal();
  j["routes"][0]["respond"] = json::object();
  e = error_of(j);
  CHECK(e.path() == "/routes/0/respond");
  CHECK(has(e, "exactly one of \"upstream\", \"respond\" and \"jwks\""));

  j = minimal();
  j["routes"][0]["path"] = "users";
  e = error_of(j);
  CHECK(e.path() == "/routes/0/path");
  CHECK(has(e, "must start with \"/\""));

  j = minimal();
  j["routes"][0]["path"] = "/a?b";
  CHECK(error_of(j).path() == "/routes/0/path");

  for (const char* host : {"*", "*.", "exa mple.com", "-bad.com", "a..b", "*.*.com", "ex_ample.com"}) {
    CAPTURE(host);
    j = minimal();
    j["routes"][0]["host"] = host;
    CHECK(error_of(j).path() == "/routes/0/host");
  }
  for (const char* host : {"", "example.com", "*.example.com", "API.Example.COM", "10.0.0.1", "[::1]"}) {
    CAPTURE(host);
    j = minimal();
    j["routes"][0]["host"] = host;
    CHECK_NOTHROW(load_config(j.dump()));
  }

  j = minimal();
  j["routes"][0]["methods"] = {"GET", "post"};
  e = error_of(j);
  CHECK(e.path() == "/routes/0/methods/1");
  CHECK(has(e, "\"post\""));
  j["routes"][0]["methods"] = {"GET", "GE T"};
  CHECK(error_of(j).path() == "/routes/0/methods/1");
  j["routes"][0]["methods"] = {"GET", "GET"};
  e = error_of(j);
  CHECK(e.path() == "/routes/0/methods/1");
  CHECK(has(e, "duplicate method"));
  j["routes"][0]["methods"] = {"GET", "PURGE", "M-SEARCH"};
  CHECK_NOTHROW(load_config(j.dump()));

  j = minimal();
  j["routes"].push_back({{"name", "route0"}, {"respond", json::object()}});  // clashes with the default
  e = error_of(j);
  CHECK(e.path() == "/routes/1/name");
  CHECK(has(e, "duplicate route name \"route0\""));
  CHECK(has(e, "/routes/0"));

  j = minimal();
  j["routes"][0]["name"] = "";
  CHECK(error_of(j).path() == "/routes/0/name");

  j = minimal();
  j["routes"][0]["rewrite_prefix"] = "v1";
  CHECK(error_of(j).path() == "/routes/0/rewrite_prefix");
  j["routes"][0]["rewrite_prefix"] = "";
  CHECK(load_config(j.dump()).routes[0].rewrite_prefix == "");
  j = minimal();
  j["routes"].push_back({{"respond", json::object()}, {"rewrite_prefix", "/x"}});
  CHECK(error_of(j).path() == "/routes/1/rewrite_prefix");
}

TEST_CASE("respond validation") {
  json j = minimal();
  j["routes"][0] = {{"respond", {{"status", 600}}}};
  auto e = error_of(j);
  CHECK(e.path() == "/routes/0/respond/status");
  CHECK(has(e, "100..599"));

  j["routes"][0] = {{"respond", {{"status", 99}}}};
  CHECK(error_of(j).path() == "/routes/0/respond/status");

  j["routes"][0] = {{"respond", {{"status", 204}, {"body", "x"}}}};
  CHECK(error_of(j).path() == "/routes/0/respond/body");

  j["routes"][0] = {{"respond", {{"headers", {{"bad name", "x"}}}}}};
  e = error_of(j);
  CHECK(e.path() == "/routes/0/respond/headers/bad name");
  CHECK(has(e, "invalid header name"));

  j["routes"][0] = {{"respond", {{"headers", {{"x-a", "a\r\nx-injected: 1"}}}}}};
  e = error_of(j);
  CHECK(e.path() == "/routes/0/respond/headers/x-a");
  CHECK(has(e, "CR, LF or NUL"));

  j["routes"][0] = {{"respond", {{"headers", {{"content-length", "5"}}}}}};
  CHECK(error_of(j).path() == "/routes/0/respond/headers/content-length");

  j["routes"][0] = {{"respond", {{"bdy", "x"}}}};
  e = error_of(j);
  CHECK(e.path() == "/routes/0/respond/bdy");
  CHECK(has(e, "did you mean \"body\""));
}

TEST_CASE("trusted proxies and request id header") {
  json j = minimal();
  j["trusted_proxies"] = {"10.0.0.0/8", "10.0.0.0/33"};
  auto e = error_of(j);
  CHECK(e.path() == "/trusted_proxies/1");
  CHECK(has(e, "invalid CIDR block \"10.0.0.0/33\""));

  j["trusted_proxies"] = {" 10.0.0.0/8"};
  CHECK(error_of(j).path() == "/trusted_proxies/0");

  j["trusted_proxies"] = {"192.0.2.7", "fd00::/8"};
  CHECK(load_config(j.dump()).options.trusted_proxies.size() == 2);

  j = minimal();
  j["request_id_header"] = "x request id";
  CHECK(error_of(j).path() == "/request_id_header");
  j["request_id_header"] = "";
  CHECK(error_of(j).path() == "/request_id_header");
}

TEST_CASE("middleware entries") {
  json j = minimal();
  j["middleware"] = {{{"name", "acess_log"}}};
  auto e = error_of(j);
  CHECK(e.path() == "/middleware/0/name");
  CHECK(has(e, "unknown middleware \"acess_log\""));
  CHECK(has(e, "did you mean \"access_log\""));
  CHECK(has(e, "access_log, authenticate, authorize, client_identity_headers, header_rewrite, ip_filter"));

  j["middleware"] = {{{"options", json::object()}}};
  CHECK(error_of(j).path() == "/middleware/0/name");

  j["middleware"] = {{{"name", "header_rewrite"}, {"options", json::array()}}};
  CHECK(error_of(j).path() == "/middleware/0/options");

  j["middleware"] = {{{"name", "header_rewrite"}, {"option", json::object()}}};
  e = error_of(j);
  CHECK(e.path() == "/middleware/0/option");
  CHECK(has(e, "did you mean \"options\""));

  j["middleware"] = {{{"name", "header_rewrite"}}};  // options default to {}
  CHECK(load_config(j.dump()).middleware.size() == 1);

  j["middleware"] = {{{"name", "header_rewrite"}, {"options", {{"request", {{"set", {{"x-a", 1}}}}}}}}};
  e = error_of(j);
  CHECK(e.path() == "/middleware/0/options/request/set/x-a");
  CHECK(has(e, "expected a string"));

  j["middleware"] = {{{"name", "header_rewrite"}, {"options", {{"response", {{"append", {{"x:a", "1"}}}}}}}}};
  CHECK(error_of(j).path() == "/middleware/0/options/response/append/x:a");

  j["middleware"] = {{{"name", "header_rewrite"},
                      {"options", {{"request", {{"set", {{"x-a", std::string("a\0b", 3)}}}}}}}}};
  e = error_of(j);
  CHECK(e.path() == "/middleware/0/options/request/set/x-a");
  CHECK(has(e, "CR, LF or NUL"));

  j["middleware"] = {{{"name", "header_rewrite"}, {"options", {{"request", {{"remove", {"ok", "not ok"}}}}}}}};
  CHECK(error_of(j).path() == "/middleware/0/options/request/remove/1");

  j["middleware"] = {{{"name", "header_rewrite"}, {"options", {{"requests", json::object()}}}}};
  e = error_of(j);
  CHECK(e.path() == "/middleware/0/options/requests");
  CHECK(has(e, "did you mean \"request\""));

  j["middleware"] = {{{"name", "access_log"}, {"options", {{"queue_capacity", 0}}}}};
  CHECK(error_of(j).path() == "/middleware/0/options/queue_capacity");
  j["middleware"] = {{{"name", "access_log"}, {"options", {{"path", 5}}}}};
  CHECK(error_of(j).path() == "/middleware/0/options/path");

  // Route chains are checked the same way.
  j = minimal();
  j["routes"][0]["middleware"] = {{{"name", "nope"}}};
  e = error_of(j);
  CHECK(e.path() == "/routes/0/middleware/0/name");
  CHECK(has(e, "unknown middleware \"nope\""));
}

TEST_CASE("custom middleware factories receive options and their path") {
  struct Tagged final : gatehouse::Middleware {
    explicit Tagged(std::string t) : tag(std::move(t)) {}
    std::string tag;
  };
  auto registry = MiddlewareRegistry::with_builtins();
  CHECK(registry.contains("access_log"));
  CHECK(registry.contains("header_rewrite"));
  CHECK_FALSE(registry.contains("tagged"));
  std::string seen_path;
  registry.add("tagged", [&seen_path](const json& options, const std::string& path) {
    seen_path = path;
    if (!options.contains("tag")) throw ConfigError(path + "/tag", "required");
    return std::make_shared<const Tagged>(options["tag"].get<std::string>());
  });
  json j = minimal();
  j["routes"][0]["middleware"] = {{{"name", "tagged"}, {"options", {{"tag", "x"}}}}};
  const auto c = load_config(j.dump(), registry);
  REQUIRE(c.routes[0].middleware.size() == 1);
  CHECK(dynamic_cast<const Tagged&>(*c.routes[0].middleware[0]).tag == "x");
  CHECK(seen_path == "/routes/0/middleware/0/options");

  j["routes"][0]["middleware"] = {{{"name", "tagged"}}};
  try {
    load_config(j.dump(), registry);
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.path() == "/routes/0/middleware/0/options/tag");
  }

  // Other exceptions from a factory become ConfigErrors at the options path.
  registry.add("throws", [](const json&, const std::string&) -> std::shared_ptr<const gatehouse::Middleware> {
    throw std::runtime_error("boom");
  });
  j["routes"][0]["middleware"] = {{{"name", "throws"}}};
  try {
    load_config(j.dump(), registry);
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.path() == "/routes/0/middleware/0/options");
    CHECK(e.reason().find("boom") != std::string::npos);
  }
}

TEST_CASE("ConfigError::what() joins path and reason") {
  CHECK(std::string(ConfigError("/a/b", "bad").what()) == "/a/b: bad");
  CHECK(std::string(ConfigError("", "bad").what()) == "bad");
}

TEST_CASE("load_config_file") {
  TempDir tmp;
  const auto missing = (tmp.dir / "nope.json").string();
  try {
    gatehouse::load_config_file(missing);
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.path() == "");
    CHECK(e.reason() == "cannot read " + missing + ": No such file or directory");
  }
  try {
    gatehouse::load_config_file(tmp.dir.string());
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.path() == "");
    CHECK(e.reason().find("cannot read") == 0);
  }
  const auto file = tmp.file("gatehouse.json", minimal().dump(2));
  const auto c = gatehouse::load_config_file(file);
  CHECK(c.routes.size() == 1);
}

// ---- load-balancing policies by name ----------------------------------------------------------

namespace {
std::string with_balancer(const std::string& value) {
  return R"({"listeners": [{"port": 8080}],
             "upstreams": {"svc": {"endpoints": ["127.0.0.1:9000", "127.0.0.1:9001"], "load_balancer": )" +
         value + R"(}},
             "routes": [{"path": "/", "upstream": "svc"}]})";
}
struct AlwaysSecond final : gatehouse::LoadBalancer {
  std::size_t pick(const gatehouse::PickRequest&) override { return 1; }
};
}  // namespace

TEST_CASE("config: an upstream names its load-balancing policy, as a name or an object") {
  for (const std::string v : {R"("round_robin")", R"({"policy": "round_robin"})"}) {
    CAPTURE(v);
    const GatewayConfig c = load_config(with_balancer(v));
    const auto& lb = c.upstreams.at("svc")->options().load_balancer;
    REQUIRE(lb);
    CHECK(lb() != nullptr);
  }
}

TEST_CASE("config: unknown or malformed load-balancing policies are refused where they are written") {
  auto error_of = [](const std::string& v) {
    try {
      load_config(with_balancer(v));
    } catch (const ConfigError& e) {
      return std::pair<std::string, std::string>{e.path(), e.reason()};
    }
    return std::pair<std::string, std::string>{};
  };
  auto [p1, r1] = error_of(R"("round_robbin")");
  CHECK(p1 == "/upstreams/svc/load_balancer");
  CHECK(r1 == "unknown load-balancing policy \"round_robbin\" (did you mean \"round_robin\"?); known: round_robin, "
              "least_request, random, consistent_hash");
  auto [p2, r2] = error_of(R"({"policy": "fastest"})");
  CHECK(p2 == "/upstreams/svc/load_balancer/policy");
  CHECK(r2.find("known: round_robin") != std::string::npos);
  auto [p3, r3] = error_of(R"({"weights": [1, 2]})");
  CHECK(p3 == "/upstreams/svc/load_balancer");
  CHECK(r3.find("missing \"policy\"") != std::string::npos);
  auto [p4, r4] = error_of(R"({"policy": "round_robin", "sticky": true})");
  CHECK(p4 == "/upstreams/svc/load_balancer/sticky");
  auto [p5, r5] = error_of("42");
  CHECK(p5 == "/upstreams/svc/load_balancer");
}

TEST_CASE("config: an application's load-balancing policy is reached by name, with its options") {
  using gatehouse::ConfigRegistries;
  using gatehouse::LoadBalancerFactory;
  ConfigRegistries registries;
  std::string seen_path;
  registries.load_balancers.add("second", [&](const nlohmann::json& options, const std::string& path) {
    seen_path = path;
    CHECK(options.at("policy") == "second");
    CHECK(options.at("why") == "tests");
    return LoadBalancerFactory([] { return std::make_unique<AlwaysSecond>(); });
  });
  const GatewayConfig c = load_config(with_balancer(R"({"policy": "second", "why": "tests"})"), registries);
  CHECK(seen_path == "/upstreams/svc/load_balancer");
  auto balancer = c.upstreams.at("svc")->options().load_balancer();
  CHECK(dynamic_cast<AlwaysSecond*>(balancer.get()) != nullptr);

  registries.load_balancers.add("broken", [](const nlohmann::json&, const std::string&) -> LoadBalancerFactory {
    throw std::runtime_error("no weights file");
  });
  try {
    load_config(with_balancer(R"("broken")"), registries);
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.path() == "/upstreams/svc/load_balancer");
    CHECK(e.reason() == "cannot create load-balancing policy \"broken\": no weights file");
  }
}
