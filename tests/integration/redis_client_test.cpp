// The Redis client against a real redis-server on loopback: commands, pipelining order, the
// deadline on a stopped server, reconnect after a restart, AUTH, TLS, EVALSHA after a script-cache
// flush, pub/sub across a restart (and on a server that stops answering), and the queue limit.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include "gatehouse/redis.hpp"
#include "support/redis_server.hpp"
#include "support/test_certs.hpp"

namespace gh = gatehouse;
using namespace std::chrono_literals;
using gh::test::RedisServer;

namespace {

struct Result {
  std::error_code ec;
  gh::RedisReply reply;
};

// The client answers every call by its deadline; the wait here is bounded all the same, so a
// broken client fails the test rather than hanging it.
Result call(gh::RedisClient& c, gh::RedisCommand cmd, std::chrono::milliseconds timeout = 500ms) {
  auto p = std::make_shared<std::promise<Result>>();
  auto f = p->get_future();
  c.async_command(std::move(cmd), timeout,
                  [p](std::error_code ec, gh::RedisReply r) { p->set_value({ec, std::move(r)}); });
  if (f.wait_for(timeout + 2s) != std::future_status::ready) {
    FAIL_CHECK("no answer 2 s after the call's deadline");
    return {std::make_error_code(std::errc::timed_out), {}};
  }
  return f.get();
}

std::shared_ptr<gh::RedisClient> client_for(const RedisServer& s, gh::RedisOptions o = {}) {
  o.address = s.address();
  o.reconnect_min = 20ms;
  o.reconnect_max = 200ms;
  auto c = gh::RedisClient::create(o);
  c->wait_connected(3s);
  return c;
}

// Polls `f` until true, at most `limit`.
template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

}  // namespace

TEST_CASE("redis client: commands, replies of every type, handler on the caller's executor") {
  RedisServer server;
  auto c = client_for(server);
  REQUIRE(c->connected());
  CHECK(call(*c, {"SET", "k", "v"}).reply.str == "OK");
  CHECK(call(*c, {"GET", "k"}).reply.str == "v");
  CHECK(call(*c, {"GET", "missing"}).reply.is_nil());
  CHECK(call(*c, gh::RedisCommand{"INCRBY", "n"}.arg(std::int64_t{41})).reply.integer == 41);
  auto err = call(*c, {"NOSUCHCOMMAND"});
  CHECK(!err.ec);
  CHECK(err.reply.is_error());
  call(*c, {"RPUSH", "l", "a", "b"});
  auto arr = call(*c, {"LRANGE", "l", "0", "-1"}).reply;
  REQUIRE(arr.is_array());
  CHECK(arr.elements.size() == 2);
  CHECK(arr.elements[1].str == "b");

  // A coroutine's handler resumes on its own thread, not the client's.
  asio::io_context io;
  std::thread::id resumed_on;
  std::string value;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    gh::RedisCommand get{"GET", "k"};  // a named local: g++ 12 mishandles temporaries in co_await
    auto [ec, r] = co_await c->async_command(std::move(get), 200ms, asio::experimental::as_tuple(asio::use_awaitable));
    resumed_on = std::this_thread::get_id();
    value = r.str;
  }, asio::detached);
  io.run();
  CHECK(resumed_on == std::this_thread::get_id());
  CHECK(value == "v");
}

TEST_CASE("redis client: many calls in flight from several threads keep their order") {
  RedisServer server;
  auto c = client_for(server);
  constexpr int kPerThread = 2000;
  auto run = [&](std::string key, std::vector<std::int64_t>& seen) {
    asio::io_context io;
    seen.reserve(kPerThread);
    for (int i = 0; i < kPerThread; ++i)
      c->async_command({"INCR", key}, 2s, asio::bind_executor(io, [&seen](std::error_code ec, gh::RedisReply r) {
        seen.push_back(ec ? -1 : r.integer);
      }));
    io.run();  // returns when every handler ran (each call holds work on io)
  };
  std::vector<std::int64_t> a, b;
  std::thread ta(run, "a", std::ref(a)), tb(run, "b", std::ref(b));
  ta.join();
  tb.join();
  for (auto* seen : {&a, &b}) {
    REQUIRE(seen->size() == kPerThread);
    bool in_order = true;
    for (int i = 0; i < kPerThread; ++i) in_order = in_order && (*seen)[i] == i + 1;
    CHECK(in_order);
  }
  CHECK(c->stats().pending == 0);
}

TEST_CASE("redis client: the deadline holds on a stopped server, and calls work again after") {
  RedisServer server;
  auto c = client_for(server);
  REQUIRE(call(*c, {"PING"}).reply.str == "PONG");
  server.pause();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = call(*c, {"PING"}, 30ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(r.ec == gh::RedisErrc::timed_out);
  CHECK(took < 300ms);
  server.resume();
  CHECK(eventually([&] { return call(*c, {"PING"}, 200ms).reply.str == "PONG"; }));
  CHECK(c->stats().timeouts >= 1);
}

TEST_CASE("redis client: killed and restarted, calls fail fast meanwhile and it reconnects") {
  RedisServer server;
  auto c = client_for(server);
  REQUIRE(call(*c, {"SET", "x", "1"}).reply.str == "OK");
  server.stop();
  // No call hangs: each ends well within its deadline or fails at once.
  REQUIRE(eventually([&] { return call(*c, {"PING"}, 100ms).ec == gh::RedisErrc::unavailable; }));
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) CHECK(call(*c, {"PING"}, 100ms).ec);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  server.start();
  CHECK(eventually([&] { return call(*c, {"PING"}, 100ms).reply.str == "PONG"; }));
  CHECK(c->stats().connects >= 2);
}

TEST_CASE("redis client: AUTH with a password and with an ACL user") {
  RedisServer server({"--requirepass", "s3cret"});
  {
    gh::RedisOptions o;
    o.password = "s3cret";
    auto c = client_for(server, o);
    CHECK(call(*c, {"PING"}).reply.str == "PONG");
    CHECK(call(*c, {"ACL", "SETUSER", "limiter", "on", ">pw2", "~*", "+@all"}).reply.str == "OK");
  }
  {
    gh::RedisOptions o;
    o.username = "limiter";
    o.password = "pw2";
    auto c = client_for(server, o);
    CHECK(call(*c, {"ACL", "WHOAMI"}).reply.str == "limiter");
  }
  {
    gh::RedisOptions o;
    o.password = "wrong";
    o.address = server.address();
    auto c = gh::RedisClient::create(o);
    CHECK(!c->wait_connected(300ms));
    CHECK(call(*c, {"PING"}, 50ms).ec);
  }
}

TEST_CASE("redis client: EVALSHA loads the script when the server does not know it") {
  RedisServer server;
  auto c = client_for(server);
  const gh::RedisScript script("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}");
  auto eval = [&] {
    auto p = std::make_shared<std::promise<Result>>();
    c->async_evalsha(script, {"{t}:counter"}, {"hello"}, 500ms,
                     [p](std::error_code ec, gh::RedisReply r) { p->set_value({ec, std::move(r)}); });
    auto f = p->get_future();
    REQUIRE(f.wait_for(3s) == std::future_status::ready);
    return f.get();
  };
  auto r = eval();
  REQUIRE(!r.ec);
  REQUIRE(r.reply.is_array());
  CHECK(r.reply.elements[0].str == "{t}:counter");
  CHECK(r.reply.elements[1].str == "hello");
  CHECK(r.reply.elements[2].integer == 1);
  CHECK(c->stats().script_loads == 1);
  CHECK(eval().reply.elements[2].integer == 2);
  CHECK(c->stats().script_loads == 1);
  server.cli("SCRIPT FLUSH");
  CHECK(eval().reply.elements[2].integer == 3);
  CHECK(c->stats().script_loads == 2);
}

TEST_CASE("redis client: TLS") {
  gh::test::TestPki pki;
  const auto cert = pki.issue("redis", {"localhost"}, {"127.0.0.1"});
  const unsigned port = gh::test::free_loopback_port();
  std::unique_ptr<RedisServer> server;
  try {
    server = std::make_unique<RedisServer>(
        std::vector<std::string>{"--tls-port", std::to_string(port), "--tls-cert-file", cert.cert_file,
                                 "--tls-key-file", cert.key_file, "--tls-ca-cert-file", pki.ca_cert,
                                 "--tls-auth-clients", "no"},
        port);
  } catch (const std::exception& e) {
    MESSAGE("redis-server without TLS support: " << e.what());
    return;
  }
  gh::RedisOptions o;
  o.address = "127.0.0.1:" + std::to_string(port);
  o.tls = gh::UpstreamTls{.ca_file = pki.ca_cert};
  auto c = gh::RedisClient::create(o);
  REQUIRE(c->wait_connected(3s));
  CHECK(call(*c, {"SET", "t", "over tls"}).reply.str == "OK");
  CHECK(call(*c, {"GET", "t"}).reply.str == "over tls");

  // A CA that did not sign the server's certificate: never connected.
  gh::test::TestPki other("other CA");
  o.tls = gh::UpstreamTls{.ca_file = other.ca_cert};
  auto bad = gh::RedisClient::create(o);
  CHECK(!bad->wait_connected(300ms));
}

// What a subscriber received, on a thread of its own; stopped (and joined) however the test ends.
struct Inbox {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::thread thread{[this] { io.run(); }};
  std::atomic<int> subscribed{0};
  std::mutex m;
  std::vector<std::string> got;

  ~Inbox() {
    work.reset();
    io.stop();
    thread.join();
  }
  void listen(gh::RedisSubscriber& sub) {
    sub.on_subscribed(io.get_executor(), [this] { ++subscribed; });
  }
  gh::RedisSubscriber::MessageHandler handler(std::string tag) {
    return [this, tag](std::string_view ch, std::string_view msg) {
      std::lock_guard lock(m);
      got.push_back(tag + ":" + std::string(ch) + ":" + std::string(msg));
    };
  }
  bool has(const std::string& entry) {
    std::lock_guard lock(m);
    return std::find(got.begin(), got.end(), entry) != got.end();
  }
};

TEST_CASE("redis client: pub/sub delivers, and subscribes again after a restart") {
  Inbox inbox;  // first: outlives the client, which posts to it
  RedisServer server({"--requirepass", "pw"});
  gh::RedisOptions o;
  o.password = "pw";
  o.db = 1;
  auto c = client_for(server, o);
  auto sub = c->subscriber();
  inbox.listen(*sub);
  sub->subscribe("news", inbox.io.get_executor(), inbox.handler("s"));
  sub->psubscribe("alerts.*", inbox.io.get_executor(), inbox.handler("p"));
  sub->subscribe("gone", inbox.io.get_executor(), inbox.handler("s"));
  REQUIRE(eventually([&] { return sub->subscribed() && inbox.subscribed.load() >= 1; }));
  CHECK(call(*c, {"PUBLISH", "news", "one"}).reply.integer == 1);
  CHECK(call(*c, {"PUBLISH", "alerts.disk", "full"}).reply.integer == 1);
  CHECK(eventually([&] { return inbox.has("s:news:one") && inbox.has("p:alerts.disk:full"); }));
  sub->unsubscribe("gone");
  REQUIRE(eventually([&] { return call(*c, {"PUBLISH", "gone", "x"}).reply.integer == 0; }));
  CHECK(sub->gaps() == 0);

  // Killed and restarted: every channel and pattern still wanted is subscribed again, and the
  // user is told (a gap, and on_subscribed again) that messages may have been missed.
  const int before = inbox.subscribed.load();
  server.stop();
  REQUIRE(eventually([&] { return !sub->subscribed(); }));
  server.start();
  REQUIRE(eventually([&] { return sub->subscribed() && inbox.subscribed.load() > before; }));
  CHECK(sub->gaps() == 1);
  REQUIRE(c->wait_connected(3s));  // the command connection reconnects on its own schedule
  CHECK(call(*c, {"PUBLISH", "news", "two"}).reply.integer == 1);
  CHECK(call(*c, {"PUBLISH", "alerts.cpu", "hot"}).reply.integer == 1);
  CHECK(call(*c, {"PUBLISH", "gone", "y"}).reply.integer == 0);  // unsubscribed stays so
  CHECK(eventually([&] { return inbox.has("s:news:two") && inbox.has("p:alerts.cpu:hot"); }));
  // The new subscription connection logged in (else SUBSCRIBE fails NOAUTH) and selected the db.
  CHECK(server.cli("-a pw --no-auth-warning CLIENT LIST").find("flags=P db=1 sub=1 psub=1") != std::string::npos);
}

TEST_CASE("redis client: a subscriber whose server stops answering reconnects (PING)") {
  Inbox inbox;
  RedisServer server;
  gh::RedisOptions o;
  o.stall_timeout = 200ms;
  auto c = client_for(server, o);
  auto sub = c->subscriber();
  inbox.listen(*sub);
  sub->subscribe("news", inbox.io.get_executor(), inbox.handler("s"));
  REQUIRE(eventually([&] { return sub->subscribed(); }));
  // Stopped, not killed: no FIN, no RST; only the unanswered PING tells.
  server.pause();
  const bool noticed = eventually([&] { return !sub->subscribed(); }, 3s);
  server.resume();
  REQUIRE(noticed);
  REQUIRE(eventually([&] { return sub->subscribed(); }));
  CHECK(sub->gaps() >= 1);
  CHECK(eventually([&] { return call(*c, {"PUBLISH", "news", "again"}).reply.integer == 1; }));
  CHECK(eventually([&] { return inbox.has("s:news:again"); }));
}

TEST_CASE("redis client: over the queue limit, calls fail at once") {
  RedisServer server;
  gh::RedisOptions o;
  o.max_pending = 8;
  auto c = client_for(server, o);
  server.pause();
  std::atomic<int> overloaded{0}, done{0};
  for (int i = 0; i < 20; ++i)
    c->async_command({"PING"}, 200ms, [&](std::error_code ec, gh::RedisReply) {
      if (ec == gh::RedisErrc::overloaded) ++overloaded;
      ++done;
    });
  CHECK(eventually([&] { return done.load() == 20; }, 2s));
  CHECK(overloaded.load() == 12);
  server.resume();
}

TEST_CASE("redis client: follows a Sentinel failover to the new primary") {
  RedisServer primary;
  RedisServer replica({"--replicaof", "127.0.0.1", std::to_string(primary.port())});
  RedisServer sentinel({}, 0,
                       "sentinel monitor main 127.0.0.1 " + std::to_string(primary.port()) +
                           " 1\nsentinel down-after-milliseconds main 1000\nsentinel failover-timeout main 5000\n");
  gh::RedisOptions o;
  o.sentinel.addresses = {sentinel.address()};
  o.sentinel.master_name = "main";
  o.reconnect_min = 20ms;
  o.reconnect_max = 200ms;
  auto c = gh::RedisClient::create(o);
  REQUIRE(c->wait_connected(3s));
  CHECK(c->stats().primary == primary.address());
  CHECK(call(*c, {"SET", "k", "before"}).reply.str == "OK");
  // The sentinel learns about the replica from the primary; then a failover can pick it.
  REQUIRE(eventually([&] { return sentinel.cli("SENTINEL replicas main").find(std::to_string(replica.port())) != std::string::npos; }, 10s));
  REQUIRE(eventually([&] { return sentinel.cli("SENTINEL FAILOVER main") == "OK"; }, 10s));
  CHECK(eventually([&] {
    return c->stats().primary == replica.address() && call(*c, {"SET", "k", "after"}).reply.str == "OK";
  }, 10s));
  CHECK(call(*c, {"GET", "k"}).reply.str == "after");
}
