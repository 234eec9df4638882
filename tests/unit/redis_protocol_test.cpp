// The Redis client's pieces that need no server: command encoding, script digests, the Sentinel
// replies and messages, the reconnect backoff.
#include <doctest/doctest.h>

#include "gatehouse/redis.hpp"
#include "redis/redis_client_impl.hpp"
#include "redis/resp_reader.hpp"

namespace gh = gatehouse;
using namespace std::chrono_literals;

TEST_CASE("redis: commands are RESP arrays of bulk strings, binary-safe") {
  gh::RedisCommand c{"SET", "k", std::string_view("a\r\nb\0c", 6)};
  c.arg(std::int64_t{-42});
  CHECK(c.size() == 4);
  CHECK(c.encoded() == std::string("*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\na\r\nb\0c\r\n$3\r\n-42\r\n", 45));
}

TEST_CASE("redis: a script is known by the SHA1 of its text") {
  CHECK(gh::RedisScript("return 1").sha1() == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

TEST_CASE("redis: the reply reader parses every type and refuses garbage") {
  gh::detail::RespReader r;
  const std::string wire = "+OK\r\n:12\r\n$-1\r\n-ERR bad\r\n*2\r\n$1\r\na\r\n*1\r\n:3\r\n";
  // Fed in pieces, as a socket delivers it.
  for (std::size_t i = 0; i < wire.size(); i += 3) REQUIRE(r.feed(wire.data() + i, std::min<std::size_t>(3, wire.size() - i)));
  bool error = false;
  std::vector<gh::RedisReply> got;
  while (auto reply = r.next(error)) got.push_back(std::move(*reply));
  REQUIRE(!error);
  REQUIRE(got.size() == 5);
  CHECK(got[0].type == gh::RedisReply::Type::status);
  CHECK(got[1].integer == 12);
  CHECK(got[2].is_nil());
  CHECK(got[3].is_error());
  CHECK(got[3].str == "ERR bad");
  CHECK(got[4].elements.at(1).elements.at(0).integer == 3);
  gh::detail::RespReader bad;
  bad.feed("?what\r\n", 7);
  CHECK(!bad.next(error));
  CHECK(error);
}

TEST_CASE("redis sentinel: the primary from get-master-addr-by-name and from +switch-master") {
  using gh::detail::parse_master_addr;
  using gh::detail::parse_switch_master;
  gh::RedisReply r;
  r.type = gh::RedisReply::Type::array;
  r.elements.resize(2);
  r.elements[0].type = r.elements[1].type = gh::RedisReply::Type::string;
  r.elements[0].str = "10.0.0.5";
  r.elements[1].str = "6380";
  auto t = parse_master_addr(r);
  REQUIRE(t);
  CHECK(t->text() == "10.0.0.5:6380");
  r.elements[1].str = "99999";
  CHECK(!parse_master_addr(r));
  CHECK(!parse_master_addr(gh::RedisReply{}));  // nil: the sentinel does not know the name

  auto s = parse_switch_master("main 10.0.0.5 6379 10.0.0.6 6380", "main");
  REQUIRE(s);
  CHECK(s->text() == "10.0.0.6:6380");
  CHECK(parse_switch_master("::1 6379 ::2 6380", "main") == std::nullopt);
  CHECK(parse_switch_master("other 10.0.0.5 6379 10.0.0.6 6380", "main") == std::nullopt);
  CHECK(parse_switch_master("main 10.0.0.5 6379", "main") == std::nullopt);
  auto v6 = parse_switch_master("main ::1 6379 2001:db8::7 6390", "main");
  REQUIRE(v6);
  CHECK(v6->text() == "[2001:db8::7]:6390");
}

TEST_CASE("redis: reconnect backoff doubles up to its maximum, with jitter below it") {
  gh::RedisOptions o;
  o.reconnect_min = 100ms;
  o.reconnect_max = 1000ms;
  for (int i = 0; i < 20; ++i) {
    const auto first = gh::detail::redis_backoff(o, 1);
    CHECK(first <= 100ms);
    CHECK(first >= 75ms);
    const auto fourth = gh::detail::redis_backoff(o, 4);
    CHECK(fourth <= 800ms);
    CHECK(fourth >= 600ms);
    const auto late = gh::detail::redis_backoff(o, 30);
    CHECK(late <= 1000ms);
    CHECK(late >= 750ms);
  }
}

TEST_CASE("redis: bad addresses are refused when the client is made") {
  CHECK_THROWS_AS(gh::RedisClient::create({.address = "no-port"}), std::invalid_argument);
  gh::RedisOptions o;
  o.sentinel.addresses = {"127.0.0.1:26379"};
  CHECK_THROWS_AS(gh::RedisClient::create(o), std::invalid_argument);  // no master_name
}
