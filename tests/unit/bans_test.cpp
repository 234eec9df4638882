// Automatic bans with a fake clock: scoring with decay, the threshold, bans that grow on repeat
// offences up to the cap, the allow list, expiry, the API, bounded memory, and ban events.
#include <doctest/doctest.h>

#include <asio/ip/address.hpp>

#include "gatehouse/bans.hpp"
#include "gatehouse/testing.hpp"

namespace gh = gatehouse;
using namespace std::chrono_literals;

namespace {

auto ip(const char* s) { return asio::ip::make_address(s); }

gh::SecurityEvent event(gh::SecurityEventKind kind, const char* client) {
  gh::SecurityEvent e;
  e.kind = kind;
  e.client_ip = ip(client);
  return e;
}

struct Fixture {
  std::shared_ptr<gh::testing::FakeClock> clock = std::make_shared<gh::testing::FakeClock>();
  std::shared_ptr<gh::BanList> bans;
  explicit Fixture(gh::BanOptions o = {}) {
    o.clock = clock;
    bans = gh::BanList::create(std::move(o));
  }
  void hit(gh::SecurityEventKind kind, const char* client, int n = 1) {
    for (int i = 0; i < n; ++i) bans->observe(event(kind, client));
  }
};

gh::BanOptions simple() {
  gh::BanOptions o;
  o.weights = {};
  o.weights[static_cast<std::size_t>(gh::SecurityEventKind::authentication_failure)] = 1;
  o.weights[static_cast<std::size_t>(gh::SecurityEventKind::waf_match)] = 5;
  o.threshold = 10;
  o.half_life = 60s;
  o.ban_time = 100s;
  o.growth = 2;
  o.max_ban_time = 350s;
  return o;
}

}  // namespace

TEST_CASE("bans: a client over the threshold is banned, one below is not") {
  Fixture f(simple());
  f.hit(gh::SecurityEventKind::authentication_failure, "198.51.100.7", 9);
  CHECK(!f.bans->banned(ip("198.51.100.7")));
  CHECK(f.bans->score(ip("198.51.100.7")) == doctest::Approx(9));
  f.hit(gh::SecurityEventKind::authentication_failure, "198.51.100.7");
  CHECK(f.bans->banned(ip("198.51.100.7")));
  CHECK(f.bans->banned(ip("::ffff:198.51.100.7")));  // the IPv4-mapped spelling is the same client
  CHECK(!f.bans->banned(ip("198.51.100.8")));
  // Kinds with weight 0 count for nothing.
  f.hit(gh::SecurityEventKind::rate_limited, "203.0.113.1", 100);
  CHECK(!f.bans->banned(ip("203.0.113.1")));
  // Weights differ by kind: two WAF matches are as bad as ten failed logins.
  f.hit(gh::SecurityEventKind::waf_match, "203.0.113.2", 2);
  CHECK(f.bans->banned(ip("203.0.113.2")));
  const auto list = f.bans->list();
  REQUIRE(list.size() == 2);
  CHECK(list[0].source == "score");
  CHECK(list[0].until - list[0].since == 100s);
  CHECK(f.bans->stats().by_score == 2);
}

TEST_CASE("bans: the score decays with its half-life") {
  Fixture f(simple());
  f.hit(gh::SecurityEventKind::authentication_failure, "198.51.100.7", 8);
  f.clock->advance(60s);
  CHECK(f.bans->score(ip("198.51.100.7")) == doctest::Approx(4));
  f.hit(gh::SecurityEventKind::authentication_failure, "198.51.100.7", 5);  // 4 + 5 = 9
  CHECK(!f.bans->banned(ip("198.51.100.7")));
  f.clock->advance(120s);  // 9 / 4
  CHECK(f.bans->score(ip("198.51.100.7")) == doctest::Approx(2.25));
  // A slow trickle never reaches the threshold.
  for (int i = 0; i < 100; ++i) {
    f.clock->advance(30s);
    f.hit(gh::SecurityEventKind::authentication_failure, "198.51.100.7");
  }
  CHECK(!f.bans->banned(ip("198.51.100.7")));
}

TEST_CASE("bans: expire after their time, and grow on repeat offences up to the cap") {
  Fixture f(simple());
  const char* c = "2001:db8::42";
  std::vector<std::chrono::seconds> lengths;
  for (int round = 0; round < 4; ++round) {
    f.hit(gh::SecurityEventKind::waf_match, c, 2);
    REQUIRE(f.bans->banned(ip(c)));
    const auto b = f.bans->list().at(0);
    lengths.push_back(std::chrono::duration_cast<std::chrono::seconds>(b.until - b.since));
    CHECK(b.offence == static_cast<unsigned>(round + 1));
    f.clock->advance(lengths.back() - 1s);
    f.bans->expire();
    CHECK(f.bans->banned(ip(c)));
    f.clock->advance(1s);
    f.bans->expire();
    CHECK(!f.bans->banned(ip(c)));
  }
  CHECK(lengths == std::vector<std::chrono::seconds>{100s, 200s, 350s, 350s});
  // Offences older than forget_after are forgotten: the next ban is a first one again.
  f.clock->advance(std::chrono::hours(25));
  f.bans->expire();
  f.hit(gh::SecurityEventKind::waf_match, c, 2);
  CHECK(f.bans->list().at(0).offence == 1);
}

TEST_CASE("bans: the allow list is never banned, not by score nor by hand") {
  auto o = simple();
  o.allow = {"10.0.0.0/8", "2001:db8:1::/48"};
  Fixture f(o);
  f.hit(gh::SecurityEventKind::waf_match, "10.1.2.3", 50);
  f.hit(gh::SecurityEventKind::waf_match, "2001:db8:1::5", 50);
  CHECK(!f.bans->banned(ip("10.1.2.3")));
  CHECK(!f.bans->banned(ip("2001:db8:1::5")));
  CHECK(!f.bans->ban(ip("10.9.9.9"), 60s, "by hand"));
  CHECK(f.bans->list().empty());
  CHECK_THROWS_AS(gh::BanList::create({.allow = {"not a cidr"}}), std::invalid_argument);
}

TEST_CASE("bans: added and lifted through the API; events for both") {
  gh::testing::EventRecorder recorder;
  Fixture f(simple());
  f.bans->set_event_reporter(recorder.security_events());
  CHECK(f.bans->ban(ip("192.0.2.9"), 30s, "abuse report"));
  CHECK(f.bans->banned(ip("192.0.2.9")));
  CHECK(f.bans->list().at(0).source == "api");
  CHECK(f.bans->lift(ip("192.0.2.9")));
  CHECK(!f.bans->banned(ip("192.0.2.9")));
  CHECK(!f.bans->lift(ip("192.0.2.9")));
  const auto events = recorder.events();
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == gh::SecurityEventKind::ban);
  CHECK(events[0].reason == "abuse report");
  CHECK(events[0].client_ip == ip("192.0.2.9"));
  CHECK(events[1].kind == gh::SecurityEventKind::unban);
}

TEST_CASE("bans: memory stays bounded under a flood of addresses") {
  auto o = simple();
  o.max_clients = 1000;
  Fixture f(o);
  char addr[32];
  for (int i = 0; i < 20000; ++i) {
    std::snprintf(addr, sizeof addr, "100.64.%d.%d", i / 256, i % 256);
    f.hit(gh::SecurityEventKind::authentication_failure, addr);
  }
  CHECK(f.bans->stats().tracked_clients <= 1000);
  // A client that keeps failing still gets banned amid the flood.
  f.hit(gh::SecurityEventKind::authentication_failure, "198.51.100.1", 10);
  CHECK(f.bans->banned(ip("198.51.100.1")));
}

TEST_CASE("bans: the sink scores events reported through SecurityEvents") {
  Fixture f(simple());
  gh::SecurityEvents events({.sinks = {f.bans->sink()}});
  for (int i = 0; i < 10; ++i) events.report(event(gh::SecurityEventKind::authentication_failure, "198.51.100.9"));
  REQUIRE(events.flush());
  CHECK(f.bans->banned(ip("198.51.100.9")));
}
