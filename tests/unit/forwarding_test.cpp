#include <doctest/doctest.h>

#include "gatehouse/testing.hpp"

#include "proxy/forwarding.hpp"

using namespace gatehouse;
using namespace gatehouse::detail;

TEST_CASE("hop-by-hop fields and those named in Connection are removed") {
  Headers h;
  h.add("Connection", "keep-alive, X-Private");
  h.add("X-Private", "secret");
  h.add("Keep-Alive", "timeout=5");
  h.add("TE", "trailers");
  h.add("Transfer-Encoding", "chunked");
  h.add("Content-Length", "3");
  h.add("Upgrade", "websocket");
  h.add("Proxy-Authorization", "Basic x");
  h.add("X-Kept", "yes");
  strip_hop_by_hop(h);
  REQUIRE(h.size() == 1);
  CHECK(h[0].name == "X-Kept");
}

TEST_CASE("every field named in any Connection field goes, however many are named") {
  Headers h;
  h.add("X-Kept", "1");
  std::string many;
  for (int i = 0; i < 20; ++i) {
    const std::string name = "X-Opt-" + std::to_string(i);
    many += (i ? " , " : "") + name;
    h.add(name, "v");
  }
  h.add("Connection", many);
  h.add("Close", "reserved name, named by the option below");
  h.add("X-Second", "v");
  h.add("connection", "close,x-second");
  h.add("X-Kept-Too", "2");
  strip_hop_by_hop(h);
  REQUIRE(h.size() == 2);
  CHECK(h[0].name == "X-Kept");
  CHECK(h[1].name == "X-Kept-Too");
}

TEST_CASE("a request is re-framed: its body's framing, or Content-Length: 0 for POST, PUT and PATCH without one") {
  CHECK(request_framing("POST", true, 5) == Framing::length);
  CHECK(request_framing("POST", true, -1) == Framing::chunked);
  CHECK(request_framing("GET", true, 3) == Framing::length);
  for (const char* m : {"POST", "PUT", "PATCH"}) {
    CAPTURE(m);
    CHECK(request_framing(m, false, 0) == Framing::length);
  }
  for (const char* m : {"GET", "HEAD", "DELETE", "OPTIONS"}) {
    CAPTURE(m);
    CHECK(request_framing(m, false, 0) == Framing::none);
  }
  Request req;
  req.set_method("POST");
  req.headers().add("host", "a");
  std::string head;
  write_request_head(head, req, request_framing("POST", false, 0), 0);
  CHECK(head.find("\r\nContent-Length: 0\r\n") != std::string::npos);
}

TEST_CASE("the client address is taken from X-Forwarded-For only through trusted proxies") {
  CidrSet trusted;
  REQUIRE(trusted.add("10.0.0.0/8"));
  Headers h;
  h.add("X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.1.1.1");
  const auto proxy = asio::ip::make_address("10.0.0.2");
  CHECK(client_address_from(h, proxy, trusted).to_string() == "203.0.113.7");
  const auto stranger = asio::ip::make_address("192.0.2.50");
  CHECK(client_address_from(h, stranger, trusted).to_string() == "192.0.2.50");
  Headers junk;
  junk.add("X-Forwarded-For", "not-an-ip");
  CHECK(client_address_from(junk, proxy, trusted).to_string() == "10.0.0.2");
}

TEST_CASE("forwarding headers replace what an untrusted client sent") {
  Exchange ex("GET", "/", {{"Host", "shop.test"}, {"X-Forwarded-For", "6.6.6.6"}, {"X-Forwarded-Proto", "https"},
                           {"Forwarded", "for=6.6.6.6"}});
  gatehouse::testing::set_peer(ex, {asio::ip::make_address("::1"), 5555}, false);
  gatehouse::testing::set_secure(ex, false);
  set_forwarded_headers(ex, address_text(ex.peer().address()));
  const Headers& h = ex.request().headers();
  CHECK(h.get("x-forwarded-for") == "::1");
  CHECK(h.get("x-forwarded-proto") == "http");
  CHECK(h.get("x-forwarded-host") == "shop.test");
  CHECK(h.get("forwarded") == "for=\"[::1]\";host=\"shop.test\";proto=http");
  CHECK(h.count("forwarded") == 1);
}

TEST_CASE("a trusted proxy's forwarding headers are extended") {
  Exchange ex("GET", "/", {{"Host", "shop.test"}, {"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-Proto", "https"},
                           {"Forwarded", "for=203.0.113.7;proto=https"}});
  gatehouse::testing::set_peer(ex, {asio::ip::make_address("10.0.0.2"), 5555}, true);
  set_forwarded_headers(ex, address_text(ex.peer().address()));
  const Headers& h = ex.request().headers();
  CHECK(h.get("x-forwarded-for") == "203.0.113.7, 10.0.0.2");
  CHECK(h.get("x-forwarded-proto") == "https");
  CHECK(h.get("forwarded") == "for=203.0.113.7;proto=https, for=10.0.0.2;host=\"shop.test\";proto=http");
}
