// The configurable retry policy and request-body replay: what is retried (conditions, attempts),
// what is never repeated (a non-idempotent request the service may have seen, a body that was not
// kept), and that a kept body goes out again byte for byte. No sockets.
#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "gatehouse/retry_policy.hpp"
#include "gatehouse/testing.hpp"
#include "proxy/body_replay.hpp"
#include "proxy/connection_slots.hpp"

using namespace gatehouse;
namespace gt = gatehouse::testing;

namespace {
RetryRequest request(const Exchange& ex, AttemptFailure f, bool sent, unsigned attempt = 0, unsigned status = 0) {
  return RetryRequest{ex, attempt, f, sent, false, 1, status};
}

// A sink that takes everything at once, or only through write(), and records what it got.
class RecordingSink final : public detail::BodySink {
 public:
  explicit RecordingSink(bool immediate) : immediate_(immediate) {}
  asio::awaitable<bool> write(std::span<const std::string_view> pieces, std::string_view tail, bool last) override {
    take(pieces, tail, last);
    co_return true;
  }
  Now write_now(std::span<const std::string_view> pieces, std::string_view tail, bool last) override {
    if (!immediate_) return Now::later;
    take(pieces, tail, last);
    return Now::written;
  }
  std::string got;
  bool ended = false;

 private:
  void take(std::span<const std::string_view> pieces, std::string_view tail, bool last) {
    for (auto p : pieces) got.append(p);
    got.append(tail);
    ended = last;
  }
  bool immediate_;
};

template <class F>
void run(F body) {
  asio::io_context io;
  asio::co_spawn(io, body(), asio::detached);
  io.run();
}
}  // namespace

TEST_CASE("retry policy: connect failures are retried for any method, up to the attempts") {
  const StandardRetryPolicy p({.attempts = 3});
  auto post = gt::exchange("POST", "/orders");
  CHECK(p.should_retry(request(post, AttemptFailure::connect_failed, false, 0)));
  CHECK(p.should_retry(request(post, AttemptFailure::connect_timeout, false, 1)));
  CHECK_FALSE(p.should_retry(request(post, AttemptFailure::connect_failed, false, 2)));  // the third was the last
  const StandardRetryPolicy once({.attempts = 1});
  CHECK_FALSE(once.should_retry(request(post, AttemptFailure::connect_failed, false)));
}

TEST_CASE("retry policy: once the service may have seen it, only an idempotent request is repeated") {
  const StandardRetryPolicy p({.attempts = 3, .on_timeout = true});
  auto get = gt::exchange("GET", "/a");
  auto put = gt::exchange("PUT", "/a");
  auto post = gt::exchange("POST", "/a");
  auto patch = gt::exchange("PATCH", "/a");
  for (auto f : {AttemptFailure::reset, AttemptFailure::timeout, AttemptFailure::send_failed}) {
    CAPTURE(to_string(f));
    CHECK(p.should_retry(request(get, f, true)));
    CHECK(p.should_retry(request(put, f, true)));
    CHECK_FALSE(p.should_retry(request(post, f, true)));
    CHECK_FALSE(p.should_retry(request(patch, f, true)));
  }
  // Nothing written yet (a write that failed at once): safe for POST too.
  CHECK(p.should_retry(request(post, AttemptFailure::send_failed, false)));
  CHECK_FALSE(p.should_retry(request(post, AttemptFailure::status, true, 0, 503)));
  CHECK(p.should_retry(request(get, AttemptFailure::status, true, 0, 503)));
  CHECK(p.repeatable(get));
  CHECK_FALSE(p.repeatable(post));

  // Opting in: every method, or a chosen list.
  const StandardRetryPolicy any({.methods = {"*"}});
  CHECK(any.should_retry(request(post, AttemptFailure::reset, true)));
  const StandardRetryPolicy chosen({.methods = {"POST"}});
  CHECK(chosen.should_retry(request(post, AttemptFailure::reset, true)));
  CHECK_FALSE(chosen.should_retry(request(get, AttemptFailure::reset, true)));

  // A body taken from the client and not kept is never sent twice, whatever the method.
  RetryRequest consumed = request(put, AttemptFailure::reset, true);
  consumed.body_consumed = true;
  CHECK_FALSE(any.should_retry(consumed));
}

TEST_CASE("retry policy: only the chosen conditions and statuses") {
  const StandardRetryPolicy defaults({});
  auto get = gt::exchange("GET", "/a");
  CHECK(defaults.retries_status(502));
  CHECK(defaults.retries_status(503));
  CHECK(defaults.retries_status(504));
  CHECK_FALSE(defaults.retries_status(500));
  CHECK_FALSE(defaults.retries_status(200));
  CHECK_FALSE(defaults.retries_status(404));
  CHECK_FALSE(defaults.should_retry(request(get, AttemptFailure::timeout, true)));  // timeouts: opt-in
  CHECK(defaults.should_retry(request(get, AttemptFailure::reset, true)));

  const StandardRetryPolicy only503({.on_connect_failure = false, .on_reset = false, .on_status = {503, 429}});
  CHECK(only503.retries_status(429));
  CHECK_FALSE(only503.retries_status(502));
  CHECK_FALSE(only503.should_retry(request(get, AttemptFailure::connect_failed, false)));
  CHECK_FALSE(only503.should_retry(request(get, AttemptFailure::reset, true)));
  CHECK(only503.should_retry(request(get, AttemptFailure::status, true, 0, 503)));
  CHECK_FALSE(only503.should_retry(request(get, AttemptFailure::status, true, 0, 502)));

  CHECK_THROWS_AS(StandardRetryPolicy({.attempts = 0}), std::invalid_argument);
  CHECK_THROWS_AS(StandardRetryPolicy({.on_status = {200}}), std::invalid_argument);

  const RetrySettings s = defaults.settings();
  CHECK(s.backoff.base == std::chrono::milliseconds(25));
  CHECK(s.backoff.max == std::chrono::milliseconds(250));
  REQUIRE(s.budget);
  CHECK(s.budget->percent == 20.0);
  CHECK(s.budget->min_concurrency == 3);
  CHECK(s.replay_body_bytes == 64 * 1024);
  // The default policy (connect_retries) keeps its old behaviour: no backoff, no budget, no replay.
  const RetrySettings c = ConnectRetryPolicy(1).settings();
  CHECK(c.backoff.base.count() == 0);
  CHECK_FALSE(c.budget);
  CHECK(c.replay_body_bytes == 0);
}

TEST_CASE("body replay: the body as sent is kept and goes out again the same; too big is not kept") {
  run([]() -> asio::awaitable<void> {
    detail::BodyReplay replay(16);
    RecordingSink first(true);
    detail::BodyReplay::Recorder rec(replay, first);
    const std::string_view a[] = {"hello ", "wor"};
    CHECK(rec.write_now(a, {}, false) == detail::BodySink::Now::written);
    const std::string_view b[] = {"ld"};
    const bool wrote = co_await rec.write(b, "!", true);
    CHECK(wrote);
    CHECK(first.got == "hello world!");
    REQUIRE(replay.complete());

    RecordingSink second(false);  // takes it only through write()
    const bool resent = co_await replay.send(second);
    CHECK(resent);
    CHECK(second.got == "hello world!");
    CHECK(second.ended);

    // write_now that says "later" is followed by write() with the same pieces: kept once.
    detail::BodyReplay again(16);
    RecordingSink slow(false);
    detail::BodyReplay::Recorder rec2(again, slow);
    const std::string_view c[] = {"abc"};
    CHECK(rec2.write_now(c, {}, true) == detail::BodySink::Now::later);
    const bool finished = co_await rec2.write(c, {}, true);
    CHECK(finished);
    CHECK(again.bytes() == "abc");

    detail::BodyReplay small(4);
    RecordingSink third(true);
    detail::BodyReplay::Recorder rec3(small, third);
    const std::string_view d[] = {"too long"};
    CHECK(rec3.write_now(d, {}, true) == detail::BodySink::Now::written);
    CHECK(third.got == "too long");  // still sent, just not kept
    CHECK_FALSE(small.complete());
  });
}

TEST_CASE("connection waiters: a freed slot wakes the oldest waiter first") {
  asio::io_context io;
  detail::ConnectionWaiters waiters;
  detail::CircuitBreaker breaker({.max_connections = 1});
  std::vector<int> woke;
  auto wait = [&](int id) -> asio::awaitable<void> {
    asio::steady_timer t(io);
    detail::ConnectionWaiters::Waiter w(waiters, t);
    waiters.add(w);
    t.expires_after(std::chrono::seconds(5));
    co_await t.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    woke.push_back(id);
  };
  for (int id = 1; id <= 3; ++id) asio::co_spawn(io, wait(id), asio::detached);
  io.poll();  // all three wait
  REQUIRE(breaker.try_acquire(BreakerLimit::max_connections));
  {
    detail::ConnectionSlot slot(breaker, waiters);
    CHECK(breaker.state().connections == 1);
  }  // the connection goes away: its slot is free, the first waiter wakes
  io.poll();
  CHECK(woke == std::vector<int>{1});
  CHECK(breaker.state().connections == 0);
  waiters.wake_one();
  waiters.wake_one();
  io.poll();
  CHECK(woke == std::vector<int>{1, 2, 3});
  CHECK(waiters.empty());
  waiters.wake_one();  // nobody left: nothing happens
}
