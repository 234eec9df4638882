// gatehouse/testing.hpp as a user sees it. The first test is the showcase: a middleware and its
// unit test in fifteen lines, no sockets, no gateway.
#include <doctest/doctest.h>

#include <cctype>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "gatehouse/testing.hpp"

namespace gh = gatehouse;

// ---- showcase -----------------------------------------------------------------------------------
struct RequireApiKey final : gh::Middleware {
  gh::Flow on_request(gh::Exchange& ex) const override {
    if (ex.request().headers().contains("x-api-key")) return gh::Flow::next();
    return gh::Flow::respond(gh::Status::unauthorized, "API key required");
  }
};

TEST_CASE("showcase: a middleware unit test") {
  auto anonymous = gh::testing::exchange("GET", "/orders");
  CHECK(RequireApiKey{}.on_request(anonymous).response().status() == 401);
  auto keyed = gh::testing::exchange("GET", "/orders", {{"x-api-key", "k1"}});
  CHECK(gh::testing::run_chain({std::make_shared<RequireApiKey>()}, keyed).status == 200);
}
// ---- end of showcase ----------------------------------------------------------------------------

namespace {

// Closes outside business hours, reading the time from a Clock so tests control it.
class OfficeHours final : public gh::Middleware {
 public:
  explicit OfficeHours(const gh::Clock& clock) : clock_(clock) {}
  gh::Flow on_request(gh::Exchange&) const override {
    const auto hour = std::chrono::floor<std::chrono::hours>(clock_.now().time_since_epoch()).count() % 24;
    if (hour >= 9 && hour < 17) return gh::Flow::next();
    return gh::Flow::respond(gh::Status::service_unavailable, "closed");
  }

 private:
  const gh::Clock& clock_;
};

// Adds a header on the way in, upper-cases the request body and prefixes the response body.
class Shouter final : public gh::Middleware {
 public:
  gh::Flow on_request(gh::Exchange& ex) const override {
    ex.request().headers().add("x-shouted", "yes");
    return gh::Flow::next();
  }
  gh::Flow on_request_body(gh::Exchange& ex, gh::BodyChunk& chunk) const override {
    std::string& loud = ex.emplace<std::string>(chunk.data);
    for (char& c : loud) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    chunk.data = loud;
    return gh::Flow::next();
  }
  void on_response_body(gh::Exchange& ex, gh::BodyChunk& chunk) const override {
    if (chunk.last) return;
    chunk.data = ex.emplace<std::string>("upstream said: " + std::string(chunk.data));
  }
};

// Refuses a request body that mentions "forbidden".
class BodyFilter final : public gh::Middleware {
 public:
  gh::Flow on_request_body(gh::Exchange&, gh::BodyChunk& chunk) const override {
    if (chunk.data.find("forbidden") != std::string_view::npos) return gh::Flow::respond(gh::Status::bad_request);
    return gh::Flow::next();
  }
};

asio::awaitable<gh::Flow> eventually(gh::Flow f) {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  co_return f;
}
asio::awaitable<gh::Flow> twice_later() { co_return gh::Flow::later(eventually(gh::Flow::respond(gh::Status::created))); }
asio::awaitable<gh::Flow> broken() {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  throw std::runtime_error("introspection failed");
}

}  // namespace

TEST_CASE("testing::exchange has the documented defaults") {
  auto ex = gh::testing::exchange("POST", "/a/b?x=1", {{"Host", "api.example.com"}, {"X-A", "1"}});
  CHECK(ex.request().method() == "POST");
  CHECK(ex.request().path() == "/a/b");
  CHECK(ex.request().host() == "api.example.com");
  CHECK(ex.request().headers().get("x-a") == "1");
  CHECK(ex.peer().address().to_string() == "127.0.0.1");
  CHECK(ex.peer().port() == 40000);
  CHECK(ex.client_address().to_string() == "127.0.0.1");
  CHECK_FALSE(ex.peer_trusted());
  CHECK(ex.request_id() == "test-id");
}

TEST_CASE("FakeClock moves only when told") {
  gh::testing::FakeClock clock;
  OfficeHours mw(clock);
  clock.set(gh::Clock::time_point{std::chrono::hours{24 * 20000 + 8}});  // 08:00 UTC
  auto early = gh::testing::exchange("GET", "/");
  CHECK(mw.on_request(early).response().status() == 503);
  const auto before = clock.now();
  clock.advance(std::chrono::hours{2});
  CHECK(clock.now() - before == std::chrono::hours{2});
  auto later = gh::testing::exchange("GET", "/");
  CHECK(mw.on_request(later).is_next());
}

TEST_CASE("FakeUpstream records requests and replays queued responses in order") {
  gh::testing::FakeUpstream up;
  gh::Response created(gh::Status::created);
  created.headers().set("location", "/orders/7");
  up.respond_with(std::move(created), "{\"id\":7}");
  up.respond_with(gh::Response(gh::Status::not_found, "gone"));  // body given inside the response
  const std::vector<std::shared_ptr<const gh::Middleware>> chain{std::make_shared<Shouter>()};

  auto first = gh::testing::exchange("POST", "/orders", {{"content-type", "text/plain"}});
  auto r1 = gh::testing::run_chain(chain, first, &up, "two pizzas");
  CHECK(r1.reached_upstream);
  CHECK(r1.status == 201);
  CHECK(r1.headers.get("location") == "/orders/7");
  CHECK(r1.body == "upstream said: {\"id\":7}");

  auto second = gh::testing::exchange("GET", "/orders/8");
  auto r2 = gh::testing::run_chain(chain, second, &up);
  CHECK(r2.status == 404);
  CHECK(r2.body == "upstream said: gone");

  auto third = gh::testing::exchange("GET", "/health");
  auto r3 = gh::testing::run_chain(chain, third, &up);  // queue empty: 200 "ok"
  CHECK(r3.status == 200);
  CHECK(r3.body == "upstream said: ok");

  REQUIRE(up.received().size() == 3);
  CHECK(up.received()[0].method == "POST");
  CHECK(up.received()[0].target == "/orders");
  CHECK(up.received()[0].body == "TWO PIZZAS");
  CHECK(up.received()[0].headers.get("x-shouted") == "yes");
  CHECK(up.received()[0].headers.get("content-type") == "text/plain");
  CHECK(up.received()[1].target == "/orders/8");
  CHECK(up.received()[1].body.empty());
}

TEST_CASE("a request body hook that responds keeps the request from the upstream") {
  gh::testing::FakeUpstream up;
  auto ex = gh::testing::exchange("POST", "/upload");
  auto r = gh::testing::run_chain({std::make_shared<BodyFilter>()}, ex, &up, "this is forbidden");
  CHECK(r.status == 400);
  CHECK_FALSE(r.reached_upstream);
  CHECK(up.received().empty());
  CHECK(r.body.find("\"request_id\":\"test-id\"") != std::string::npos);

  auto fine = gh::testing::exchange("POST", "/upload");
  CHECK(gh::testing::run_chain({std::make_shared<BodyFilter>()}, fine, &up, "all good").status == 200);
  CHECK(up.received().size() == 1);
}

TEST_CASE("testing::run settles later flows, again and again, and rethrows") {
  CHECK(gh::testing::run(gh::Flow::next()).is_next());
  CHECK(gh::testing::run(gh::Flow::later(eventually(gh::Flow::next()))).is_next());
  gh::Flow f = gh::testing::run(gh::Flow::later(twice_later()));
  REQUIRE(f.is_response());
  CHECK(f.response().status() == 201);
  CHECK_THROWS_WITH_AS(gh::testing::run(gh::Flow::later(broken())), "introspection failed", std::runtime_error);
}
