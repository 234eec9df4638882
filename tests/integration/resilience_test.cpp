// Circuit breaking and retries end to end on loopback, against real upstream servers: limits trip
// into a fast 503 with a JSON reason under concurrent load (never a hang), pending requests get the
// connections that come back, retries go to another instance, a POST the service saw is never
// repeated, a kept body is replayed, the retry budget caps the load when every instance fails, and
// the per-try and total timeouts hold. Every wait has a timeout.
#include <doctest/doctest.h>
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "integration/fixture.hpp"
#include "support/httplib_server.hpp"
#include "support/raw_http.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

// Holds the service's handlers until the test opens it (at most 5 s, so nothing can hang).
struct Gate {
  void wait() {
    std::unique_lock lock(mu);
    cv.wait_for(lock, 5s, [this] { return open; });
  }
  void release() {
    {
      std::lock_guard lock(mu);
      open = true;
    }
    cv.notify_all();
  }
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
};

// A service instance: answers `status` with its name, after the gate (if any) and `delay`; counts
// requests and keeps the last body it received.
struct Instance {
  Instance(std::string name, int status = 200, Gate* gate = nullptr, std::chrono::milliseconds delay = 0ms)
      : name(std::move(name)) {
    server.new_task_queue = [] { return new httplib::ThreadPool(24); };
    auto handle = [this, status, gate, delay](const httplib::Request& req, httplib::Response& res) {
      ++hits;
      ++inside;
      {
        std::lock_guard lock(mu);
        last_body = req.body;
      }
      if (gate) gate->wait();
      if (delay.count() > 0) std::this_thread::sleep_for(delay);
      res.status = status;
      res.set_content(this->name, "text/plain");
      --inside;
    };
    server.Get("/.*", handle);
    server.Post("/.*", handle);
    server.Put("/.*", handle);
    port = thread.start(server);
  }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port); }
  std::string body() {
    std::lock_guard lock(mu);
    return last_body;
  }
  std::string name;
  std::atomic<int> hits{0}, inside{0};
  std::mutex mu;
  std::string last_body;
  httplib::Server server;
  unsigned short port = 0;
  ServerThread thread;  // last: stops the server before the members its handlers use
};

// Always the first endpoint this request has not tried: makes "which instance first" certain.
class FirstUntried final : public LoadBalancer {
 public:
  std::size_t pick(const PickRequest& r) override {
    for (std::size_t i = 0; i < r.endpoints.size(); ++i)
      if (std::find(r.tried.begin(), r.tried.end(), i) == r.tried.end()) return i;
    return 0;
  }
};
LoadBalancerFactory first_untried() {
  return [] { return std::make_unique<FirstUntried>(); };
}

// Retries 503 answers (only), with a short backoff.
std::shared_ptr<const RetryPolicy> retry_on_503() {
  RetryOptions r;
  r.on_status = {503};
  r.backoff = {1ms, 5ms};
  return std::make_shared<StandardRetryPolicy>(r);
}

std::string request(const std::string& method, const std::string& body = {}) {
  std::string r = method + " /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

struct Outcome {
  std::string response;
  std::chrono::milliseconds took{};
};

// Clients sending `bytes` at once, each on its own connection and thread.
class Clients {
 public:
  Clients(unsigned short port, int n, const std::string& bytes) : out_(static_cast<std::size_t>(n)) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, port, i, bytes] {
        const auto t0 = SteadyClock::now();
        std::string r = exchange_raw(port, bytes, 8s);
        std::lock_guard lock(mu_);
        out_[static_cast<std::size_t>(i)] = {std::move(r), since(t0)};
      });
    }
  }
  ~Clients() { join(); }
  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  /// Waits (at most `limit`) until `n` responses with `status` are in.
  bool wait_for(int status, int n, std::chrono::milliseconds limit = 5s) {
    const auto end = SteadyClock::now() + limit;
    while (SteadyClock::now() < end) {
      if (count(status) >= n) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
  int count(int status) {
    std::lock_guard lock(mu_);
    return static_cast<int>(std::count_if(out_.begin(), out_.end(), [&](const Outcome& o) { return status_of(o.response) == status; }));
  }
  std::vector<Outcome> outcomes() {
    std::lock_guard lock(mu_);
    return out_;
  }

 private:
  std::mutex mu_;
  std::vector<Outcome> out_;
  std::vector<std::thread> threads_;
};

// Waits until `cond` holds, at most 5 s.
template <class F>
bool eventually(F cond) {
  for (int i = 0; i < 1000; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// The value of one sample of a scrape (name and labels as rendered), or -1.
double metric(Gateway& gw, const std::string& series) {
  const std::string text = gw.metrics()->render_prometheus();
  const std::string prefix = series + " ";
  for (std::size_t pos = 0; (pos = text.find(prefix, pos)) != std::string::npos; pos += prefix.size()) {
    if (pos == 0 || text[pos - 1] == '\n') {
      const std::size_t end = text.find('\n', pos);
      return std::stod(text.substr(pos + prefix.size(), end - pos - prefix.size()));
    }
  }
  return -1;
}

}  // namespace

TEST_CASE("circuit breaker: past max_requests, requests get 503 with a JSON reason at once, on every worker") {
  Gate gate;
  Instance slow("slow", 200, &gate);
  GatewayUnderTest g(GatewayOptions{.workers = 2});
  auto up = Upstream::create({.name = "slow", .endpoints = {slow.endpoint()}, .circuit_breaker = {.max_requests = 3}});
  g.gw->route({.path = "/", .origin = up});
  const auto port = g.start();

  Clients clients(port, 10, request("GET"));
  // Three are with the service (held at the gate); the other seven are refused without waiting.
  REQUIRE(clients.wait_for(503, 7));
  CHECK(eventually([&] { return slow.inside == 3; }));
  const CircuitBreakerState held = up->circuit_breaker();
  CHECK(held.requests == 3);
  CHECK(held.tripped(BreakerLimit::max_requests) == 7);
  CHECK(metric(*g.gw, R"(gatehouse_upstream_breaker_in_use{upstream="slow",limit="max_requests"})") == 3);
  CHECK(metric(*g.gw, R"(gatehouse_upstream_breaker_limit{upstream="slow",limit="max_requests"})") == 3);
  gate.release();
  clients.join();
  CHECK(clients.count(200) == 3);
  CHECK(clients.count(503) == 7);
  for (const auto& o : clients.outcomes()) {
    if (status_of(o.response) != 503) continue;
    CHECK(o.took < 2s);  // refused while the admitted ones were still held: no waiting
    const std::string body = body_of(o.response);
    CAPTURE(body);
    CHECK(body.find(R"({"error":"upstream_overloaded","reason":"max_requests","upstream":"slow")") == 0);
    CHECK(body.find(R"("request_id":")") != std::string::npos);
    CHECK(lower(o.response).find("content-type: application/json") != std::string::npos);
  }
  CHECK(slow.hits == 3);
  CHECK(up->circuit_breaker().requests == 0);
  CHECK(metric(*g.gw, R"(gatehouse_upstream_breaker_trips_total{upstream="slow",limit="max_requests"})") == 7);
}

TEST_CASE("circuit breaker: at max_connections requests wait as pending, get connections that come back, and "
          "past max_pending_requests are refused") {
  Gate gate;
  Instance svc("svc", 200, &gate);
  GatewayUnderTest g;  // one worker: the connections come back to the worker whose requests wait
  auto up = Upstream::create({.name = "svc", .endpoints = {svc.endpoint()}, .connect_timeout = 4000ms,
                              .circuit_breaker = {.max_connections = 2, .max_pending_requests = 2}});
  g.gw->route({.path = "/", .origin = up});
  const auto port = g.start();

  Clients first(port, 2, request("GET"));
  REQUIRE(eventually([&] { return svc.inside == 2; }));  // both connections are in use
  Clients more(port, 4, request("GET"));
  REQUIRE(more.wait_for(503, 2));  // two wait for a connection, two are refused at once
  CHECK(eventually([&] { return up->circuit_breaker().pending_requests == 2; }));
  CHECK(up->circuit_breaker().connections == 2);
  for (const auto& o : more.outcomes())
    if (status_of(o.response) == 503) CHECK(body_of(o.response).find(R"("reason":"max_pending_requests")") != std::string::npos);
  gate.release();
  first.join();
  more.join();
  CHECK(first.count(200) == 2);
  CHECK(more.count(200) == 2);  // served on the connections the first two gave back
  CHECK(svc.hits == 4);
  CHECK(up->circuit_breaker().connections <= 2);
  CHECK(up->circuit_breaker().pending_requests == 0);
}

TEST_CASE("circuit breaker: a pending request that gets no connection within connect_timeout gets 503") {
  Gate gate;
  Instance svc("svc", 200, &gate);
  GatewayUnderTest g;
  auto up = Upstream::create({.name = "one", .endpoints = {svc.endpoint()}, .connect_timeout = 300ms,
                              .circuit_breaker = {.max_connections = 1}});
  g.gw->route({.path = "/", .origin = up});
  const auto port = g.start();
  Clients holder(port, 1, request("GET"));
  REQUIRE(eventually([&] { return svc.inside == 1; }));
  const auto t0 = SteadyClock::now();
  const std::string r = exchange_raw(port, request("GET"), 5s);
  const auto took = since(t0);
  gate.release();
  CHECK(status_of(r) == 503);
  CHECK(body_of(r).find(R"("reason":"max_connections")") != std::string::npos);
  CHECK(took >= 250ms);
  CHECK(took < 2000ms);
  holder.join();
  CHECK(holder.count(200) == 1);
  CHECK(up->circuit_breaker().tripped(BreakerLimit::max_connections) == 1);
}

TEST_CASE("retries: a 503 is retried on the other instance, and counted by condition") {
  Instance busy("busy", 503), ok("ok");
  GatewayUnderTest g;
  auto up = Upstream::create({.name = "pair", .endpoints = {busy.endpoint(), ok.endpoint()},
                              .retry_policy = retry_on_503()});
  g.gw->route({.path = "/", .origin = up});
  const auto port = g.start();
  for (int i = 0; i < 6; ++i) {
    const std::string resp = exchange_raw(port, request("GET"), 5s);
    CHECK(status_of(resp) == 200);
    CHECK(body_of(resp) == "ok");
  }
  CHECK(ok.hits == 6);
  CHECK(busy.hits >= 1);  // round robin sent some there first
  CHECK(metric(*g.gw, R"(gatehouse_upstream_retries_total{upstream="pair",condition="503"})") == busy.hits.load());
}

TEST_CASE("retries: a POST the service saw is not repeated; a PUT's kept body goes to the next instance") {
  Instance busy("busy", 503), ok("ok");
  GatewayUnderTest g;
  auto up = Upstream::create({.name = "pair", .endpoints = {busy.endpoint(), ok.endpoint()},
                              .load_balancer = first_untried(), .retry_policy = retry_on_503()});
  g.gw->route({.path = "/", .origin = up});
  const auto port = g.start();

  const std::string post = exchange_raw(port, request("POST", "order=1"), 5s);
  CHECK(status_of(post) == 503);  // the service's own answer
  CHECK(body_of(post) == "busy");
  CHECK(busy.hits == 1);
  CHECK(ok.hits == 0);

  const std::string put = exchange_raw(port, request("PUT", "name=ada"), 5s);
  CHECK(status_of(put) == 200);
  CHECK(busy.hits == 2);
  CHECK(ok.hits == 1);
  CHECK(ok.body() == "name=ada");  // the body, sent again
}

TEST_CASE("retries: a POST is retried after a refused connect, but not after the upstream closed on it") {
  Instance ok("ok");
  std::atomic<int> swallowed{0};
  RawServer closer([&](int fd) {
    std::string buf;
    if (read_head(fd, buf, 3s)) ++swallowed;
    ::shutdown(fd, SHUT_RDWR);  // read the request, then hang up without a byte of answer
  });
  GatewayUnderTest g;
  RetryOptions r;  // defaults: connect_failure, reset, gateway errors
  r.backoff = {1ms, 5ms};
  auto policy = std::make_shared<StandardRetryPolicy>(r);
  auto refused = Upstream::create({.name = "refused", .endpoints = {"127.0.0.1:" + std::to_string(closed_port()), ok.endpoint()},
                                   .load_balancer = first_untried(), .retry_policy = policy});
  auto hangup = Upstream::create({.name = "hangup", .endpoints = {"127.0.0.1:" + std::to_string(closer.port()), ok.endpoint()},
                                  .load_balancer = first_untried(), .retry_policy = policy});
  g.gw->route({.path = "/refused", .origin = refused});
  g.gw->route({.path = "/hangup", .origin = hangup});
  const auto port = g.start();

  std::string post = "POST /refused HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello";
  std::string resp = exchange_raw(port, post, 5s);
  CHECK(status_of(resp) == 200);
  CHECK(ok.body() == "hello");

  post = "POST /hangup HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 5\r\n\r\nagain";
  resp = exchange_raw(port, post, 5s);
  CHECK(status_of(resp) == 502);
  CHECK(swallowed == 1);
  CHECK(ok.hits == 1);  // never sent to the second instance
}

TEST_CASE("retries: when every instance fails, the retry budget keeps retries to a share of the load") {
  // Three instances that all answer 503 after 300 ms; ten requests at once, three attempts allowed.
  // Without a budget that is 30 upstream attempts; with min_concurrency 1 and 0 %, one retry at a time.
  Instance a("a", 503, nullptr, 300ms), b("b", 503, nullptr, 300ms), c("c", 503, nullptr, 300ms);
  GatewayUnderTest g;
  RetryOptions r;
  r.attempts = 3;
  r.on_status = {503};
  r.backoff = {1ms, 2ms};
  r.budget = RetryBudget{0.0, 1};
  auto up = Upstream::create({.name = "down", .endpoints = {a.endpoint(), b.endpoint(), c.endpoint()},
                              .retry_policy = std::make_shared<StandardRetryPolicy>(r)});
  g.gw->route({.path = "/", .origin = up});
  const auto port = g.start();
  {
    Clients clients(port, 10, request("GET"));
    clients.join();
    CHECK(clients.count(503) == 10);  // the services' own 503, passed on
    for (const auto& o : clients.outcomes()) CHECK(o.took < 4s);
  }
  const int attempts = a.hits + b.hits + c.hits;
  CAPTURE(attempts);
  CHECK(attempts >= 10);
  CHECK(attempts <= 14);
  const CircuitBreakerState s = up->circuit_breaker();
  CHECK(s.retry_budget_exhausted >= 6);
  CHECK(s.retries == 0);
  CHECK(metric(*g.gw, R"(gatehouse_upstream_retry_budget_exhausted_total{upstream="down"})") ==
        static_cast<double>(s.retry_budget_exhausted));
  CHECK(metric(*g.gw, R"(gatehouse_upstream_retries_total{upstream="down",condition="503"})") == attempts - 10);
}

TEST_CASE("retries: a silent instance is left after the per-try timeout; total_timeout bounds all tries") {
  Instance ok("ok");
  auto silent_handler = [](int fd) {
    std::string buf;
    read_head(fd, buf, 3s);
    read_until_close(fd, 4s);  // never answers
  };
  RawServer silent1(silent_handler), silent2(silent_handler);
  GatewayUnderTest g;
  RetryOptions r;
  r.attempts = 5;
  r.on_timeout = true;
  r.per_try_timeout = 200ms;
  r.backoff = {1ms, 2ms};
  auto policy = std::make_shared<StandardRetryPolicy>(r);
  auto one_silent = Upstream::create({.name = "one", .endpoints = {"127.0.0.1:" + std::to_string(silent1.port()), ok.endpoint()},
                                      .load_balancer = first_untried(), .retry_policy = policy});
  auto all_silent = Upstream::create({.name = "all",
                                      .endpoints = {"127.0.0.1:" + std::to_string(silent1.port()),
                                                    "127.0.0.1:" + std::to_string(silent2.port())},
                                      .total_timeout = 500ms, .retry_policy = policy});
  g.gw->route({.path = "/one", .origin = one_silent});
  g.gw->route({.path = "/all", .origin = all_silent});
  const auto port = g.start();

  auto t0 = SteadyClock::now();
  std::string resp = exchange_raw(port, "GET /one HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 5s);
  auto took = since(t0);
  CHECK(status_of(resp) == 200);
  CHECK(took >= 180ms);
  CHECK(took < 1500ms);

  t0 = SteadyClock::now();
  resp = exchange_raw(port, "GET /all HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 5s);
  took = since(t0);
  CHECK(status_of(resp) == 504);
  CHECK(took >= 450ms);
  CHECK(took < 1500ms);  // five tries of 200 ms would be 1 s: the total cut them short
  CHECK(silent1.connections() + silent2.connections() <= 4);
}
