#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/claims.hpp"
#include "gatehouse/config.hpp"
#include "gatehouse/middleware/rate_limit.hpp"
#include "gatehouse/testing.hpp"
#include "middleware/rate_limit_deny_cache.hpp"
#include "middleware/rate_limit_gcra.hpp"
#include "middleware/rate_limit_key.hpp"
#include "middleware/rate_limit_table.hpp"

using namespace gatehouse;
namespace gt = gatehouse::testing;
using detail::Gcra;
using detail::gcra_decide;
using detail::RateLimitTable;
using namespace std::chrono_literals;

namespace {

// 10 per second (100 ms = 390625 ticks), burst 3.
constexpr Gcra kTenPerSecondBurst3{390'625, 3 * 390'625};

// Admits requests at `now` until one is refused; returns how many were admitted.
int admit_all(std::int64_t& tat, std::int64_t now, const Gcra& g) {
  int n = 0;
  for (;;) {
    auto d = gcra_decide(tat, now, g);
    if (!d.allowed) return n;
    tat = d.new_tat;
    ++n;
  }
}

std::string key_of(const std::vector<RateLimitKeyPart>& parts, const Exchange& ex, unsigned v6 = 64) {
  std::string out;
  if (!detail::build_rate_limit_key(parts, ex, 32, v6, out)) return "<missing>";
  return out;
}

Exchange& with_client(Exchange& ex, const char* address) {
  gt::set_peer(ex, {asio::ip::make_address(address), 40000});
  return ex;
}

RateLimitOptions one_limit(RateLimit l, const Clock* clock) {
  RateLimitOptions o;
  o.limits.push_back(std::move(l));
  o.clock = clock;
  return o;
}

}  // namespace

TEST_CASE("GCRA: a fresh key gets exactly its burst at once, then one request per interval") {
  const std::int64_t t0 = 1'000'000'000;
  std::int64_t tat = t0;
  CHECK(admit_all(tat, t0, kTenPerSecondBurst3) == 3);
  auto refused = gcra_decide(tat, t0, kTenPerSecondBurst3);
  REQUIRE_FALSE(refused.allowed);
  CHECK(refused.retry_after == 390'625);  // exactly one interval
  CHECK(refused.remaining == 0);
  // One tick before the boundary: still refused; at it: admitted, with nothing left.
  CHECK_FALSE(gcra_decide(tat, t0 + 390'624, kTenPerSecondBurst3).allowed);
  auto at_boundary = gcra_decide(tat, t0 + 390'625, kTenPerSecondBurst3);
  CHECK(at_boundary.allowed);
  CHECK(at_boundary.remaining == 0);
  // The remaining count goes down one per request.
  std::int64_t fresh = t0;
  auto first = gcra_decide(fresh, t0, kTenPerSecondBurst3);
  CHECK(first.remaining == 2);
  CHECK(first.reset == 390'625);
}

TEST_CASE("GCRA: the sustained rate is exact over a long run, whatever the offered rate") {
  // 10/s, burst 2 (with a burst of 1, requests arriving a hair early on a fixed grid would be
  // refused: some tolerance is what lets a client that keeps to the rate get all of it).
  const Gcra g{390'625, 2 * 390'625};
  std::int64_t tat = 0;
  int admitted = 0;
  // 30 requests per second for 100 seconds, evenly spaced.
  for (std::int64_t i = 0; i < 3000; ++i) {
    auto d = gcra_decide(tat, i * 130'208, g);
    if (d.allowed) {
      tat = d.new_tat;
      ++admitted;
    }
  }
  CHECK(admitted >= 1000);
  CHECK(admitted <= 1002);
}

TEST_CASE("GCRA: time going backwards neither freezes a key nor gives it more than the rate") {
  const std::int64_t t0 = 10'000'000'000;
  std::int64_t tat = t0;
  CHECK(admit_all(tat, t0, kTenPerSecondBurst3) == 3);
  // The clock steps back one hour: the key is not frozen for an hour (one request now)...
  const std::int64_t back = t0 - 3600 * 3'906'250LL;
  CHECK(admit_all(tat, back, kTenPerSecondBurst3) == 1);
  // ...and from then on it gets the rate, not a new burst.
  auto d = gcra_decide(tat, back, kTenPerSecondBurst3);
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after == kTenPerSecondBurst3.interval);
  CHECK(admit_all(tat, back + d.retry_after, kTenPerSecondBurst3) == 1);
}

TEST_CASE("GCRA: huge gaps refill the burst and nothing overflows") {
  std::int64_t tat = 0;
  CHECK(admit_all(tat, 0, kTenPerSecondBurst3) == 3);
  const std::int64_t ten_years = 10LL * 365 * 24 * 3600 * 3'906'250LL;
  CHECK(admit_all(tat, ten_years, kTenPerSecondBurst3) == 3);
  // Slow limits: 1 per day with a burst of a year's worth.
  const Gcra daily{24LL * 3600 * 3'906'250LL, 365LL * 24 * 3600 * 3'906'250LL};
  std::int64_t t = ten_years;
  CHECK(admit_all(t, ten_years, daily) == 365);
}

TEST_CASE("table: one key's decisions match plain GCRA, through the 48-bit wrap of its clock") {
  RateLimitTable table(1000);
  const std::int64_t wrap = std::int64_t{1} << 48;
  for (std::int64_t base : {std::int64_t{5}, wrap - 390'625 * 2, 3 * wrap + 17}) {
    const std::uint64_t h = 0x1234'5678'9abc'def0ull + static_cast<std::uint64_t>(base);
    int admitted = 0;
    for (int i = 0; i < 10; ++i) admitted += table.decide(h, base, kTenPerSecondBurst3).decision.allowed;
    CHECK(admitted == 3);
    auto r = table.decide(h, base + 390'625, kTenPerSecondBurst3);
    CHECK(r.decision.allowed);
    CHECK_FALSE(table.decide(h, base + 390'625, kTenPerSecondBurst3).decision.allowed);
  }
}

TEST_CASE("table: bounded memory; idle keys go first, then the key closest to idle (it gets its burst back)") {
  RateLimitTable table(8);  // one bucket of 8 slots
  REQUIRE(table.slots() == 8);
  const Gcra g{390'625, 390'625};  // burst 1
  auto key = [](std::uint64_t i) { return (i + 1) << 48; };  // all in bucket 0, distinct tags
  // Eight keys, each used once at t = i ticks: all tracked, all exhausted.
  for (std::uint64_t i = 0; i < 8; ++i) CHECK(table.decide(key(i), static_cast<std::int64_t>(i), g).decision.allowed);
  for (std::uint64_t i = 0; i < 8; ++i) CHECK_FALSE(table.decide(key(i), 8, g).decision.allowed);
  // A ninth key pushes out key 0 (the closest to idle), which is counted as a live eviction.
  auto r = table.decide(key(8), 8, g);
  CHECK(r.decision.allowed);
  CHECK(r.evicted_live);
  CHECK(table.decide(key(0), 9, g).decision.allowed);  // forgotten: a full burst again (fail open)
  // Keys 2..7 are still limited.
  for (std::uint64_t i = 3; i < 8; ++i) CHECK_FALSE(table.decide(key(i), 10, g).decision.allowed);
  // Once every key is idle again, a new key replaces an idle one: nothing is lost.
  auto later = table.decide(key(20), 10'000'000, g);
  CHECK(later.decision.allowed);
  CHECK_FALSE(later.evicted_live);
}

TEST_CASE("table: workers deciding at once for one key never admit more than the limit") {
  RateLimitTable table(1024);
  const Gcra g{390'625, 1000 * 390'625LL};  // burst 1000, all at one instant
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) admitted += table.decide(42, 7, g).decision.allowed;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(admitted.load() == 1000);
}

TEST_CASE("keys: IPv6 clients count per /64, IPv4 per address, IPv4-mapped as IPv4") {
  const std::vector<RateLimitKeyPart> by_client{RateLimitKeyPart::client_address()};
  Exchange a, b, c, d, e, f;
  with_client(a, "2001:db8:1:2::1");
  with_client(b, "2001:db8:1:2:ffff:eeee:dddd:cccc");
  with_client(c, "2001:db8:1:3::1");
  with_client(d, "192.0.2.1");
  with_client(e, "192.0.2.2");
  with_client(f, "::ffff:192.0.2.1");
  CHECK(key_of(by_client, a) == key_of(by_client, b));
  CHECK(key_of(by_client, a) != key_of(by_client, c));
  CHECK(key_of(by_client, a, 128) != key_of(by_client, b, 128));
  CHECK(key_of(by_client, d) != key_of(by_client, e));
  CHECK(key_of(by_client, d) == key_of(by_client, f));
}

TEST_CASE("keys: subject, API key id, claims and headers; a missing part means the limit does not apply") {
  auto ex = gt::exchange("GET", "/", {{"X-Tenant", "acme"}});
  const std::vector<RateLimitKeyPart> sub{RateLimitKeyPart::subject()};
  const std::vector<RateLimitKeyPart> api{RateLimitKeyPart::api_key()};
  const std::vector<RateLimitKeyPart> tenant_claim{RateLimitKeyPart::claim("/org/id")};
  const std::vector<RateLimitKeyPart> tenant_header{RateLimitKeyPart::header("x-tenant")};
  CHECK(key_of(sub, ex) == "<missing>");  // not authenticated
  CHECK(key_of(tenant_header, ex) != "<missing>");
  CHECK(key_of({RateLimitKeyPart::header("x-other")}, ex) == "<missing>");
  ex.emplace<auth::Claims>(
      auth::Claims(nlohmann::json{{"sub", "alice"}, {"gatehouse_api_key_id", "ci-1"}, {"org", {{"id", "acme"}}}}));
  const std::string alice = key_of(sub, ex);
  CHECK(alice.find("alice") != std::string::npos);
  CHECK(key_of(api, ex).find("ci-1") != std::string::npos);
  CHECK(key_of(tenant_claim, ex).find("acme") != std::string::npos);
  // The same bytes under different kinds are different keys; combinations differ from parts.
  CHECK(key_of(tenant_claim, ex) != key_of(tenant_header, ex));
  gt::set_route_name(ex, "orders");
  const std::string combined = key_of({RateLimitKeyPart::subject(), RateLimitKeyPart::route()}, ex);
  CHECK(combined != alice);
  CHECK(combined.find("orders") != std::string::npos);
  // Seeded hashes: equal input, equal hash; another seed, another hash.
  CHECK(detail::rate_limit_key_hash(alice, 1) == detail::rate_limit_key_hash(alice, 1));
  CHECK(detail::rate_limit_key_hash(alice, 1) != detail::rate_limit_key_hash(alice, 2));
  CHECK(detail::rate_limit_key_hash(alice, 1) != detail::rate_limit_key_hash(combined, 1));
}

TEST_CASE("RateLimiter: 429 with Retry-After and the IETF RateLimit fields; the event names the limit") {
  gt::FakeClock clock;
  RateLimitOptions o = one_limit({.name = "per_client", .requests = 2, .period = 1s, .burst = 2,
                                  .key = {RateLimitKeyPart::client_address()}},
                                 &clock);
  o.x_ratelimit_headers = true;
  const RateLimiter limiter(o);
  gt::EventRecorder recorder;
  for (int i = 0; i < 2; ++i) {
    auto ex = gt::exchange("GET", "/a");
    CHECK(limiter.on_request(ex).is_next());
  }
  auto ex = gt::exchange("GET", "/a");
  gt::set_route_name(ex, "api");
  recorder.attach(ex);
  Flow f = limiter.on_request(ex);
  REQUIRE(f.is_response());
  CHECK(f.response().status() == 429);
  const Headers& h = f.response().headers();
  CHECK(h.get("retry-after") == "1");
  CHECK(h.get("ratelimit-policy") == "\"per_client\";q=2;w=1");
  CHECK(h.get("ratelimit") == "\"per_client\";r=0;t=1");
  CHECK(h.get("x-ratelimit-limit") == "2");
  CHECK(h.get("x-ratelimit-remaining") == "0");
  auto events = recorder.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == SecurityEventKind::rate_limited);
  CHECK(events[0].rule_id == "per_client");
  CHECK(events[0].http_status == 429);
  CHECK(events[0].route == "api");
  // Another client is not affected; after half a second (one interval) the first one may go again.
  auto other = gt::exchange("GET", "/a");
  with_client(other, "192.0.2.9");
  CHECK(limiter.on_request(other).is_next());
  clock.advance(500ms);
  auto again = gt::exchange("GET", "/a");
  CHECK(limiter.on_request(again).is_next());
}

TEST_CASE("RateLimiter: several named limits; the first one over decides; shadow limits only report") {
  gt::FakeClock clock;
  RateLimitOptions o;
  o.clock = &clock;
  o.limits = {{.name = "shadow_tight", .requests = 1, .burst = 1, .shadow = true},
              {.name = "per_route", .requests = 3, .burst = 3, .key = {RateLimitKeyPart::route()}}};
  o.headers = RateLimitHeaders::all;
  const RateLimiter limiter(o);
  gt::EventRecorder recorder;
  std::vector<unsigned> statuses;
  for (int i = 0; i < 4; ++i) {
    auto ex = gt::exchange("GET", "/");
    gt::set_route_name(ex, "r");
    recorder.attach(ex);
    Flow f = limiter.on_request(ex);
    if (f.is_next()) {
      ex.response().set_status(200);
      CHECK(limiter.on_response(ex).is_next());
      // A shadow limit is a trial: clients are not told about it.
      CHECK(ex.response().headers().get("ratelimit-policy") == "\"per_route\";q=3;w=1");
      CHECK(ex.response().headers().get("ratelimit") == "\"per_route\";r=" + std::to_string(2 - i) + ";t=1");
    }
    statuses.push_back(f.is_next() ? 200 : f.response().status());
  }
  CHECK(statuses == std::vector<unsigned>{200, 200, 200, 429});
  auto events = recorder.events();
  REQUIRE(events.size() == 4);  // three shadow refusals, one real one
  CHECK(events[0].rule_id == "shadow_tight");
  CHECK(events[0].http_status == 0);
  CHECK(events[3].rule_id == "per_route");
}

TEST_CASE("RateLimiter: bad options are refused") {
  auto bad = [](RateLimit l) { CHECK_THROWS_AS(RateLimiter(one_limit(std::move(l), nullptr)), std::invalid_argument); };
  bad({.name = "", .requests = 1});
  bad({.name = "has space", .requests = 1});
  bad({.name = "x", .requests = 0});
  bad({.name = "x", .requests = 1, .period = 0s});
  bad({.name = "x", .requests = 1, .key = {RateLimitKeyPart::header("bad header")}});
  RateLimitOptions twice;
  twice.limits = {{.name = "a", .requests = 1}, {.name = "a", .requests = 2}};
  CHECK_THROWS_AS(RateLimiter{twice}, std::invalid_argument);
  CHECK_THROWS_AS(RateLimiter{RateLimitOptions{}}, std::invalid_argument);
}

TEST_CASE("config: rate_limit builds from JSON and points at the offending key") {
  const auto registry = MiddlewareRegistry::with_builtins();
  auto mw = registry.create("rate_limit", nlohmann::json::parse(R"({
      "limits": [ { "name": "per_subject", "requests": 600, "period_s": 60, "burst": 20,
                    "key": ["subject", "route", {"header": "X-Tenant"}, {"claim": "org"}] } ],
      "ipv6_prefix": 56, "max_keys": 5000, "headers": "all", "x_ratelimit_headers": true })"),
                            "/middleware/0/options");
  auto* limiter = dynamic_cast<const RateLimiter*>(mw.get());
  REQUIRE(limiter);
  CHECK(limiter->options().limits.at(0).period == 60s);
  CHECK(limiter->options().limits.at(0).key.at(2).name == "x-tenant");
  CHECK(limiter->options().ipv6_prefix == 56);
  auto error_at = [&](const char* text) -> std::string {
    try {
      registry.create("rate_limit", nlohmann::json::parse(text), "/m");
    } catch (const ConfigError& e) {
      return e.path();
    }
    return "no error";
  };
  CHECK(error_at(R"({"limits": []})") == "/m/limits");
  CHECK(error_at(R"({"limits": [{"name": "a"}]})") == "/m/limits/0/requests");
  CHECK(error_at(R"({"limits": [{"name": "a", "requests": 1, "key": ["client_adress"]}]})") == "/m/limits/0/key/0");
  CHECK(error_at(R"({"limits": [{"name": "a", "requests": 1}, {"name": "a", "requests": 1}]})") ==
        "/m/limits/1/name");
  CHECK(error_at(R"({"limits": [{"name": "a", "requests": 1}], "headers": "some"})") == "/m/headers");
  CHECK(error_at(R"({"limits": [{"name": "a", "requests": 1, "burts": 3}]})") == "/m/limits/0/burts");
}

TEST_CASE("deny cache: a refused key is refused until its retry time, other keys are never refused by it") {
  detail::RateLimitDenyCache cache(64);
  const std::uint64_t key = 0xabcd'0000'0000'0005ull;
  const std::uint64_t same_slot_other_key = 0x1234'0000'0000'0005ull;
  CHECK(cache.retry_after(key, 1000) == 0);
  cache.refuse_until(key, 1500);
  CHECK(cache.retry_after(key, 1000) == 500);
  CHECK(cache.retry_after(key, 1499) == 1);
  CHECK(cache.retry_after(key, 1500) == 0);
  CHECK(cache.retry_after(same_slot_other_key, 1000) == 0);  // the tag differs
  cache.refuse_until(same_slot_other_key, 2000);              // takes the slot over
  CHECK(cache.retry_after(key, 1000) == 0);                   // one round trip more, never a wrong refusal
  // Through the 48-bit wrap of the tick counter.
  const std::int64_t wrap = std::int64_t{1} << 48;
  cache.refuse_until(key, wrap + 10);
  CHECK(cache.retry_after(key, wrap - 10) == 20);
}
