#include <doctest/doctest.h>

#include "net/endpoint_text.hpp"
#include "net/url.hpp"

using gatehouse::detail::Url;

TEST_CASE("URLs of key servers and introspection endpoints parse strictly") {
  auto u = Url::parse("https://id.example.com/.well-known/jwks.json?v=2");
  REQUIRE(u);
  CHECK(u->tls);
  CHECK(u->host == "id.example.com");
  CHECK(u->port == 443);
  CHECK(u->target == "/.well-known/jwks.json?v=2");
  CHECK(u->authority() == "id.example.com");
  CHECK(u->text() == "https://id.example.com/.well-known/jwks.json?v=2");

  u = Url::parse("HTTP://[::1]:8080");
  REQUIRE(u);
  CHECK_FALSE(u->tls);
  CHECK(u->host == "::1");
  CHECK(u->port == 8080);
  CHECK(u->target == "/");
  CHECK(u->authority() == "[::1]:8080");

  u = Url::parse("https://127.0.0.1:8443?x=1");
  REQUIRE(u);
  CHECK(u->target == "/?x=1");
  CHECK(u->origin() == "https://127.0.0.1:8443");

  for (const char* bad : {"", "id.example.com/keys", "ftp://x/", "https://", "https:///path", "https://u:p@host/",
                          "https://host/#frag", "https://host:0/", "https://host:65536/", "https://host:/",
                          "https://host:12a/", "https://[::1/", "https://[::1]x/", "https://ho st/", "https://host/\r\n",
                          "https://a:b:c/"}) {
    CAPTURE(bad);
    std::string error;
    CHECK_FALSE(Url::parse(bad, &error));
    CHECK_FALSE(error.empty());
  }
}

TEST_CASE("endpoints are written as address:port, IPv6 addresses in brackets (labels, admin, logs)") {
  using asio::ip::make_address;
  using asio::ip::tcp;
  CHECK(gatehouse::detail::endpoint_text(tcp::endpoint(make_address("127.0.0.1"), 8080)) == "127.0.0.1:8080");
  CHECK(gatehouse::detail::endpoint_text(tcp::endpoint(make_address("::1"), 443)) == "[::1]:443");
  CHECK(gatehouse::detail::endpoint_text(tcp::endpoint(make_address("fe80::1"), 0)) == "[fe80::1]:0");
}
