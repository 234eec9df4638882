// The chain runner (lib/chain.hpp), driven through testing::run_chain and directly.
#include <doctest/doctest.h>

#include <array>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "core/chain.hpp"
#include "gatehouse/testing.hpp"

using namespace gatehouse;
namespace gt = gatehouse::testing;

namespace {

using Events = std::vector<std::string>;

asio::awaitable<Flow> decide_later(Flow result) {
  // A real suspension, so the test proves the flow is settled by an executor and not inline.
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  co_return result;
}

asio::awaitable<Flow> fail_later() {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  throw std::runtime_error("backend down");
}

// Records every hook call as "<name>.<hook>" and acts as told in on_request.
class Probe final : public Middleware {
 public:
  enum class Mode { pass, respond, throws, later_next, later_respond, later_throws, unauthorized };
  Probe(std::string name, Events& events, Mode mode = Mode::pass)
      : name_(std::move(name)), events_(&events), mode_(mode) {}

  Flow on_request(Exchange&) const override {
    events_->push_back(name_ + ".request");
    switch (mode_) {
      case Mode::pass: return Flow::next();
      case Mode::respond: return Flow::respond(Response(Status::forbidden, "no", "text/plain"));
      case Mode::throws: throw std::runtime_error("boom");
      case Mode::later_next: return Flow::later(decide_later(Flow::next()));
      case Mode::later_respond: return Flow::later(decide_later(Flow::respond(Status::too_many_requests)));
      case Mode::later_throws: return Flow::later(fail_later());
      case Mode::unauthorized: {
        Flow f = Flow::respond(Status::unauthorized, "token expired");
        f.response().headers().set("www-authenticate", "Bearer error=\"invalid_token\"");
        return f;
      }
    }
    return Flow::next();
  }
  Flow on_response(Exchange&) const override {
    events_->push_back(name_ + ".response");
    return Flow::next();
  }
  void on_complete(Exchange&, std::error_code) const noexcept override { events_->push_back(name_ + ".complete"); }

 private:
  std::string name_;
  Events* events_;
  Mode mode_;
};

std::vector<std::shared_ptr<const Middleware>> chain_of(Events& ev, std::vector<std::pair<std::string, Probe::Mode>> spec) {
  std::vector<std::shared_ptr<const Middleware>> chain;
  for (auto& [name, mode] : spec) chain.push_back(std::make_shared<Probe>(name, ev, mode));
  return chain;
}

}  // namespace

TEST_CASE("on_request runs front to back, on_response and on_complete back to front") {
  Events ev;
  auto chain = chain_of(ev, {{"a", Probe::Mode::pass}, {"b", Probe::Mode::pass}, {"c", Probe::Mode::pass}});
  auto ex = gt::exchange("GET", "/");
  auto r = gt::run_chain(chain, ex);
  CHECK(r.reached_upstream);
  CHECK(r.status == 200);
  CHECK(ev == Events{"a.request", "b.request", "c.request", "c.response", "b.response", "a.response", "c.complete",
                     "b.complete", "a.complete"});
}

TEST_CASE("a response short-circuits: later middleware is skipped, earlier ones see the response") {
  Events ev;
  auto chain = chain_of(ev, {{"a", Probe::Mode::pass}, {"b", Probe::Mode::respond}, {"c", Probe::Mode::pass}});
  auto ex = gt::exchange("GET", "/");
  gt::FakeUpstream up;
  auto r = gt::run_chain(chain, ex, &up);
  CHECK_FALSE(r.reached_upstream);
  CHECK(up.received().empty());
  CHECK(r.status == 403);
  CHECK(r.body == "no");
  CHECK(ev == Events{"a.request", "b.request", "b.response", "a.response", "b.complete", "a.complete"});
}

TEST_CASE("Flow::later is settled and the chain goes on") {
  Events ev;
  auto chain = chain_of(ev, {{"a", Probe::Mode::later_next}, {"b", Probe::Mode::pass}});
  auto ex = gt::exchange("GET", "/");
  auto r = gt::run_chain(chain, ex);
  CHECK(r.status == 200);
  CHECK(r.reached_upstream);
  CHECK(ev == Events{"a.request", "b.request", "b.response", "a.response", "b.complete", "a.complete"});

  SUBCASE("a later that responds stops the chain") {
    Events ev2;
    auto chain2 = chain_of(ev2, {{"a", Probe::Mode::later_respond}, {"b", Probe::Mode::pass}});
    auto ex2 = gt::exchange("GET", "/");
    auto r2 = gt::run_chain(chain2, ex2);
    CHECK(r2.status == 429);
    CHECK_FALSE(r2.reached_upstream);
    CHECK(ev2 == Events{"a.request", "a.response", "a.complete"});
  }
}

TEST_CASE("an exception in a hook becomes a 500 with the request id, and on_complete still runs once") {
  for (auto mode : {Probe::Mode::throws, Probe::Mode::later_throws}) {
    CAPTURE(static_cast<int>(mode));
    Events ev;
    auto chain = chain_of(ev, {{"a", Probe::Mode::pass}, {"b", mode}, {"c", Probe::Mode::pass}});
    auto ex = gt::exchange("GET", "/");
    ex.set_request_id("req-42");
    auto r = gt::run_chain(chain, ex);
    CHECK(r.status == 500);
    CHECK(r.headers.get("content-type") == "application/json");
    const auto body = nlohmann::json::parse(r.body);
    CHECK(body.at("status") == 500);
    CHECK(body.at("request_id") == "req-42");
    CHECK(body.at("error") == "Internal Server Error");
    CHECK(ev == Events{"a.request", "b.request", "b.response", "a.response", "b.complete", "a.complete"});
  }
}

TEST_CASE("Flow::respond(Status) keeps the headers the middleware added") {
  Events ev;
  auto chain = chain_of(ev, {{"auth", Probe::Mode::unauthorized}});
  auto ex = gt::exchange("GET", "/");
  auto r = gt::run_chain(chain, ex);
  CHECK(r.status == 401);
  CHECK(r.headers.get("www-authenticate") == "Bearer error=\"invalid_token\"");
  CHECK(r.headers.count("content-type") == 1);
  const auto body = nlohmann::json::parse(r.body);
  CHECK(body.at("error") == "token expired");
  CHECK(body.at("request_id") == "test-id");
}

TEST_CASE("step_on_request advances pos past every hook it called") {
  Events ev;
  Probe a("a", ev), b("b", ev, Probe::Mode::respond), c("c", ev);
  const std::array<const Middleware*, 3> chain{&a, &b, &c};
  auto ex = gt::exchange("GET", "/");
  std::size_t pos = 0;
  Flow f = detail::step_on_request(chain, ex, pos);
  CHECK(f.is_response());
  CHECK(pos == 2);
  detail::run_on_complete(chain, pos, ex, {});
  CHECK(ev == Events{"a.request", "b.request", "b.complete", "a.complete"});
}

namespace {

int g_alive = 0;  // live Tracked objects across all types

template <int N>
struct Tracked {
  explicit Tracked(int v) : value(v) { ++g_alive; }
  Tracked(const Tracked& o) : value(o.value) { ++g_alive; }
  Tracked& operator=(const Tracked&) = default;
  ~Tracked() { --g_alive; }
  int value;
};

template <int... N>
void emplace_all(Exchange& ex, std::integer_sequence<int, N...>) {
  (ex.emplace<Tracked<N>>(N * 10), ...);
}

template <int... N>
bool all_found(Exchange& ex, std::integer_sequence<int, N...>) {
  return ((ex.find<Tracked<N>>() != nullptr && ex.find<Tracked<N>>()->value == N * 10) && ...);
}

}  // namespace

TEST_CASE("typed slots: emplace, find, replace, many types, destructors run") {
  g_alive = 0;
  {
    auto ex = gt::exchange("GET", "/");
    CHECK(ex.find<Tracked<0>>() == nullptr);
    auto seq = std::make_integer_sequence<int, 20>{};  // more than the 8 inline slots
    emplace_all(ex, seq);
    CHECK(g_alive == 20);
    CHECK(all_found(ex, seq));

    ex.emplace<Tracked<3>>(7);  // replaces in place
    CHECK(ex.find<Tracked<3>>()->value == 7);
    CHECK(g_alive == 20);

    // A type larger than the inline arena still works.
    auto& big = ex.emplace<std::array<char, 1000>>();
    big[999] = 'x';
    CHECK((*ex.find<std::array<char, 1000>>())[999] == 'x');

    const Exchange& cex = ex;
    CHECK(cex.find<Tracked<19>>()->value == 190);
    CHECK(cex.find<Tracked<20>>() == nullptr);
  }
  CHECK(g_alive == 0);
}
