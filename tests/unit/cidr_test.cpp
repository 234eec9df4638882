#include <doctest/doctest.h>

#include <asio/ip/address.hpp>

#include "net/cidr.hpp"

using gatehouse::detail::Cidr;
using gatehouse::detail::CidrSet;

namespace {
asio::ip::address ip(const char* s) { return asio::ip::make_address(s); }
bool in(const char* block, const char* addr) {
  auto c = Cidr::parse(block);
  REQUIRE(c);
  return c->contains(ip(addr));
}
}  // namespace

TEST_CASE("IPv4 blocks") {
  CHECK(in("10.0.0.0/8", "10.1.2.3"));
  CHECK(in("10.0.0.0/8", "10.255.255.255"));
  CHECK_FALSE(in("10.0.0.0/8", "11.0.0.0"));
  CHECK_FALSE(in("10.0.0.0/8", "9.255.255.255"));
  CHECK(in("192.168.1.0/23", "192.168.0.77"));
  CHECK_FALSE(in("192.168.2.0/23", "192.168.1.1"));
  CHECK(in("0.0.0.0/0", "203.0.113.9"));
  CHECK(in("172.16.0.0/12", "172.31.0.1"));
  CHECK_FALSE(in("172.16.0.0/12", "172.32.0.1"));
}

TEST_CASE("a bare address is a single host") {
  auto c = Cidr::parse("1.2.3.4");
  REQUIRE(c);
  CHECK(c->is_v4());
  CHECK(c->prefix_length() == 32);
  CHECK(c->contains(ip("1.2.3.4")));
  CHECK_FALSE(c->contains(ip("1.2.3.5")));

  auto v6 = Cidr::parse("::1");
  REQUIRE(v6);
  CHECK_FALSE(v6->is_v4());
  CHECK(v6->prefix_length() == 128);
  CHECK(v6->contains(ip("::1")));
  CHECK_FALSE(v6->contains(ip("::2")));
}

TEST_CASE("IPv6 blocks") {
  CHECK(in("::1/128", "::1"));
  CHECK(in("fd00::/8", "fd12:3456::1"));
  CHECK_FALSE(in("fd00::/8", "fe80::1"));
  CHECK(in("2001:db8::/32", "2001:db8:ffff::1"));
  CHECK_FALSE(in("2001:db8::/32", "2001:db9::1"));
  CHECK(in("2001:db8::/33", "2001:db8:7fff::1"));
  CHECK_FALSE(in("2001:db8::/33", "2001:db8:8000::1"));
  CHECK(in("::/0", "2001:db8::1"));
  CHECK(in("FD00::/8", "fd00::5"));  // hex digits in either case
}

TEST_CASE("families do not mix, except through IPv4-mapped addresses") {
  CHECK_FALSE(in("10.0.0.0/8", "::1"));
  CHECK(in("::/0", "10.0.0.1"));  // IPv4 seen as ::ffff:10.0.0.1 is in ::/0
  CHECK_FALSE(in("fd00::/8", "10.0.0.1"));
  // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
  CHECK(in("10.0.0.0/8", "::ffff:10.9.8.7"));
  CHECK_FALSE(in("10.0.0.0/8", "::ffff:11.9.8.7"));
  CHECK(in("1.2.3.4", "::ffff:1.2.3.4"));
  // Only the mapped prefix counts, not IPv4-compatible or other embeddings.
  CHECK_FALSE(in("10.0.0.0/8", "::10.9.8.7"));
  CHECK_FALSE(in("10.0.0.0/8", "64:ff9b::10.9.8.7"));
  // An IPv6 block written in mapped form matches plain IPv4 clients.
  CHECK(in("::ffff:10.0.0.0/104", "10.1.1.1"));
  CHECK_FALSE(in("::ffff:10.0.0.0/104", "11.1.1.1"));
}

TEST_CASE("host bits are accepted and masked") {
  auto c = Cidr::parse("10.1.2.3/8");
  REQUIRE(c);
  CHECK(c->to_string() == "10.0.0.0/8");
  CHECK(c->contains(ip("10.200.0.1")));
  auto c6 = Cidr::parse("fd12:3456::1/8");
  REQUIRE(c6);
  CHECK(c6->to_string() == "fd00::/8");
  CHECK(Cidr::parse("192.168.1.255/23")->to_string() == "192.168.0.0/23");
  CHECK(Cidr::parse("::1")->to_string() == "::1/128");
}

TEST_CASE("strict parsing") {
  const char* bad[] = {
      "",              "/8",           "10.0.0.0/",       "10.0.0.0/33",   "::/129",
      "10.0.0.0/+8",   "+10.0.0.0/8",  " 10.0.0.0/8",     "10.0.0.0/8 ",   "10.0.0.0 /8",
      "10.0.0.0/ 8",   "10.0.0.0/-1",  "10.0.0.0/08",     "10.0.0.0/8/8",  "10.0.0/8",
      "10.0.0.0.0",    "256.0.0.0",    "010.0.0.0/8",     "1.2.3.4x",      "fe80::1%eth0",
      "fe80::1%1/64",  ":::1",         "12345::/16",      "g::/16",        "10.0.0.0/1000",
      "example.com",   "10.0.0.0\n",   "[::1]/128",
  };
  for (const char* text : bad) {
    CAPTURE(text);
    CHECK_FALSE(Cidr::parse(text));
  }
  // Embedded NUL must not truncate the text.
  CHECK_FALSE(Cidr::parse(std::string_view("10.0.0.0\0/8", 11)));
  CHECK_FALSE(Cidr::parse(std::string_view("1.2.3.4\0", 8)));

  CHECK(Cidr::parse("0.0.0.0/0"));
  CHECK(Cidr::parse("10.0.0.0/32"));
  CHECK(Cidr::parse("::/128"));
  CHECK(Cidr::parse("::ffff:1.2.3.4/128"));
}

TEST_CASE("CidrSet") {
  CidrSet set;
  CHECK(set.empty());
  CHECK_FALSE(set.contains(ip("10.0.0.1")));
  CHECK(set.add("10.0.0.0/8"));
  CHECK(set.add("::1/128"));
  CHECK_FALSE(set.add("10.0.0.0/99"));
  CHECK(set.size() == 2);
  CHECK_FALSE(set.empty());
  CHECK(set.contains(ip("10.3.3.3")));
  CHECK(set.contains(ip("::ffff:10.3.3.3")));
  CHECK(set.contains(ip("::1")));
  CHECK_FALSE(set.contains(ip("127.0.0.1")));
  CHECK_FALSE(set.contains(ip("::2")));
}
