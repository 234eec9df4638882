// Hot reload on loopback: reloads under load lose no request and every answer comes from the
// configuration in force when its request arrived; an invalid file changes nothing; listeners are
// added and removed; certificates rotate; an unchanged upstream keeps its pooled connections.
#include <doctest/doctest.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gatehouse/config.hpp>
#include <gatehouse/config_reloader.hpp>

#include "integration/fixture.hpp"
#include "support/capture_logger.hpp"
#include "support/raw_http.hpp"
#include "support/temp_dir.hpp"
#include "support/test_certs.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

namespace {

// A gateway answering "/" with `body` from a "respond" route, on 127.0.0.1 port `port` (0: any).
std::string answering(const std::string& body, unsigned workers = 2, unsigned short port = 0) {
  return R"({"workers": )" + std::to_string(workers) + R"(, "listeners": [{"address": "127.0.0.1", "port": )" +
         std::to_string(port) + R"(}], "routes": [{"path": "/", "respond": {"status": 200, "body": ")" + body +
         R"("}}]})";
}

void write_file(const std::string& path, const std::string& text) {
  // Written aside, then renamed: a reload never reads half a file (as an operator's editor or
  // config management would do it).
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp, std::ios::trunc) << text;
  std::filesystem::rename(tmp, path);
}

// One response read from a keep-alive connection: status and Content-Length body, or nothing when
// the connection failed or the answer was incomplete within the timeout.
struct Answer {
  int status = 0;
  std::string body;
};
std::optional<Answer> read_answer(int fd, std::string& buf) {
  const auto head = read_head(fd, buf, 5s);
  if (!head) return std::nullopt;
  Answer a;
  a.status = status_of(*head);
  const std::string h = lower(*head);
  const auto cl = h.find("content-length:");
  const std::size_t length = cl == std::string::npos ? 0 : std::stoul(h.substr(cl + 15));
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (buf.size() < length) {
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char chunk[4096];
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return std::nullopt;
    buf.append(chunk, static_cast<std::size_t>(n));
  }
  a.body = buf.substr(0, length);
  buf.erase(0, length);
  return a;
}

std::optional<Answer> http_get(int fd, std::string& buf, const std::string& path = "/") {
  if (!send_all(fd, "GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n")) return std::nullopt;
  return read_answer(fd, buf);
}

// Connecting is refused (the listener is closed), within `within`.
bool refused_within(unsigned short port, std::chrono::milliseconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      const int fd = connect_loopback(port);
      ::close(fd);
    } catch (const std::exception&) {
      return true;
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// The common name of the certificate a TLS listener presents.
std::string served_common_name(unsigned short port) {
  const int fd = connect_loopback(port);
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  std::string cn;
  if (SSL_connect(ssl) == 1) {
    if (X509* cert = SSL_get1_peer_certificate(ssl)) {
      char name[256] = {};
      X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, sizeof name);
      cn = name;
      X509_free(cert);
    }
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
  return cn;
}

// A local handler answering 200 with `body`.
Origin says(std::string body) {
  return [body = std::move(body)](Exchange&) { return Flow::respond(Response(Status::ok, body)); };
}

// Replaces the process-wide logger for one test.
struct CapturedLog {
  CapturedLog() : log(std::make_shared<CaptureLogger>()) { set_logger(log); }
  ~CapturedLog() { set_logger(nullptr); }
  std::shared_ptr<CaptureLogger> log;
};

}  // namespace

TEST_CASE("reload: 10 reloads under load, invalid files between them: no request fails, answers follow the reloads") {
  CapturedLog captured;
  TempDir dir;
  const std::string file = (dir.dir / "gateway.json").string();
  write_file(file, answering("A"));
  GatewayConfig config = load_config_file(file);
  Gateway gw{config.options};
  apply(config, gw);
  gw.start();
  const unsigned short port = gw.local_endpoints().at(0).port();
  // Any port: the reloaded files name the port the gateway got, so they match exactly.
  write_file(file, answering("A", 2, port));
  ConfigReloader reloader{gw, file, std::move(config)};

  // Configuration k (0: the first, k: after the k-th good reload) answers A when k is even.
  std::atomic<int> started{0}, finished{0};
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, connections{0};
  std::mutex mu;
  std::vector<std::string> failures;
  auto fail = [&](std::string what) {
    std::lock_guard lock(mu);
    failures.push_back(std::move(what));
  };
  auto client = [&] {
    while (!stop) {
      int fd = -1;
      try {
        fd = connect_loopback(port);
      } catch (const std::exception& e) {
        fail(std::string("connect: ") + e.what());
        return;
      }
      ++connections;
      std::string buf;
      // Keep-alive connections that also end now and then: new connections are tested too.
      for (int r = 0; r < 25 && !stop; ++r) {
        // Reloads that had returned before the request left: their configuration (or a later one)
        // must answer. Reloads that had not begun when the answer came: no later one may.
        const int newest_done = finished.load();
        const auto a = http_get(fd, buf);
        const int newest_begun = started.load();
        if (!a) {
          fail("no answer on connection " + std::to_string(fd));
          break;
        }
        if (a->status != 200) {
          fail("status " + std::to_string(a->status));
          break;
        }
        bool allowed = false;
        for (int k = newest_done; k <= newest_begun; ++k) allowed |= a->body == (k % 2 == 0 ? "A" : "B");
        if (!allowed) {
          fail("answer " + a->body + " with reloads " + std::to_string(newest_done) + ".." + std::to_string(newest_begun));
        }
        ++ok;
      }
      ::close(fd);
    }
  };
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) clients.emplace_back(client);
  std::chrono::milliseconds slowest_reload{0};

  for (int i = 1; i <= 10; ++i) {
    std::this_thread::sleep_for(40ms);
    // An invalid file first: refused with the path of the problem, nothing changes.
    if (i % 2) {
      write_file(file, R"({"workers": 2, "listeners": [{"port": )" + std::to_string(port) +
                           R"(}], "routes": [{"path": "/", "upstream": "nope"}]})");
    } else {
      write_file(file, R"({"workers": 2, "listeners": [{"port": )" + std::to_string(port) +
                           R"(, "tls": {"certificates": [{"cert": "/nonexistent.crt", "key": "/nonexistent.key"}]}}], "routes": []})");
    }
    const ReloadResult bad = reloader.reload();
    CHECK_FALSE(bad.ok);
    CHECK(bad.error_path == (i % 2 ? "/routes/0/upstream" : "/listeners/0/tls/certificates/0/cert"));
    std::this_thread::sleep_for(20ms);

    write_file(file, answering(i % 2 ? "B" : "A", 2, port));
    started = i;
    const auto t0 = std::chrono::steady_clock::now();
    const ReloadResult good = reloader.reload();
    slowest_reload = std::max(slowest_reload, since(t0));
    finished = i;
    CHECK(good.ok);
    CAPTURE(good.error);
    CHECK(good.summary.generation == static_cast<std::uint64_t>(i + 1));
    CHECK(good.summary.listeners_kept == 1);
    CHECK(good.summary.listeners_opened == 0);
  }
  std::this_thread::sleep_for(40ms);
  stop = true;
  for (auto& t : clients) t.join();
  gw.stop();
  gw.wait();

  std::lock_guard lock(mu);
  std::string all_failures;
  for (std::size_t i = 0; i < failures.size() && i < 10; ++i) all_failures += failures[i] + "\n";
  CAPTURE(all_failures);
  CHECK(failures.empty());
  MESSAGE("requests: " << ok.load() << ", connections: " << connections.load()
                        << ", slowest reload: " << slowest_reload.count() << " ms");
  CHECK(ok.load() > 200);
  // Each reload was reported, the refused ones with the JSON path of the problem.
  int reloaded = 0, refused = 0;
  for (const auto& e : captured.log->entries()) {
    if (e.message == "configuration reloaded") ++reloaded;
    if (e.message.starts_with("configuration reload refused")) {
      ++refused;
      CHECK(e.level == LogLevel::error);
      CHECK(!e.field("path").empty());
    }
  }
  CHECK(reloaded == 10);
  CHECK(refused == 10);
}

TEST_CASE("reload: an invalid definition leaves the running configuration untouched") {
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = says("old")});
  const auto port = g.start();
  GatewayDefinition next = g.gw->definition();
  next.routes.push_back(Route{.path = "no-slash", .origin = says("new")});
  CHECK_THROWS_AS(g.gw->reload(next), std::invalid_argument);
  next = g.gw->definition();
  next.listeners.at(0).tls = ServerTls{.certificates = {{"/nonexistent.crt", "/nonexistent.key"}}};
  CHECK_THROWS(g.gw->reload(next));
  const auto r = exchange_raw(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  CHECK(status_of(r) == 200);
  CHECK(body_of(r) == "old");
}

TEST_CASE("reload: listeners added open on every worker, removed ones close, unchanged ones keep their socket") {
  GatewayUnderTest g(GatewayOptions{.workers = 2});
  g.gw->route({.path = "/", .origin = says("hi")});
  const auto first = g.start();

  GatewayDefinition next = g.gw->definition();
  next.listeners.push_back({.address = "127.0.0.1", .port = 0, .name = "extra"});
  const ReloadSummary added = g.gw->reload(next);
  CHECK(added.listeners_opened == 1);
  CHECK(added.listeners_kept == 1);
  CHECK(added.listeners_closed == 0);
  const auto endpoints = g.gw->local_endpoints();
  REQUIRE(endpoints.size() == 2);
  CHECK(endpoints[0].port() == first);  // same socket, same port
  const unsigned short extra = endpoints[1].port();
  // Several connections: with two workers each has its own socket on the new port.
  for (int i = 0; i < 6; ++i) {
    CHECK(body_of(exchange_raw(extra, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")) == "hi");
  }

  // An idle keep-alive connection on the listener about to go, and one with a request in flight
  // cannot be made with a handler answering at once: the idle one is enough to see it close.
  const int idle = connect_loopback(extra);
  std::string buf;
  REQUIRE(http_get(idle, buf));
  next.listeners.pop_back();
  const ReloadSummary removed = g.gw->reload(next);
  CHECK(removed.listeners_closed == 1);
  CHECK(removed.listeners_kept == 1);
  CHECK(refused_within(extra, 2s));
  CHECK(read_until_close(idle, 2s).closed);
  ::close(idle);
  CHECK(body_of(exchange_raw(first, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")) == "hi");
  CHECK(g.gw->local_endpoints().size() == 1);
}

TEST_CASE("reload: a keep-alive connection moves to the new routes at its next request") {
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = says("one")});
  const auto port = g.start();
  const int fd = connect_loopback(port);
  std::string buf;
  auto a = http_get(fd, buf);
  REQUIRE(a);
  CHECK(a->body == "one");
  GatewayDefinition next = g.gw->definition();
  next.routes.at(0).origin = says("two");
  next.routes.push_back({.path = "/added", .origin = says("added")});
  g.gw->reload(next);
  a = http_get(fd, buf);
  REQUIRE(a);
  CHECK(a->body == "two");
  a = http_get(fd, buf, "/added");
  REQUIRE(a);
  CHECK(a->body == "added");
  ::close(fd);
}

TEST_CASE("reload: a TLS listener serves a rotated certificate to new handshakes") {
  TestPki pki;
  TempDir dir;
  const CertificateFiles first = pki.issue("first.test", {"localhost"});
  const CertificateFiles second = pki.issue("second.test", {"localhost"});
  const std::string cert = (dir.dir / "server.crt").string();
  const std::string key = (dir.dir / "server.key").string();
  std::filesystem::copy_file(first.cert_file, cert);
  std::filesystem::copy_file(first.key_file, key);

  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = says("tls")});
  const auto port = g.start(ServerTls{.certificates = {{cert, key}}});
  CHECK(served_common_name(port) == "first.test");

  // The files are replaced under the same names, as certbot or cert-manager would, then reloaded.
  std::filesystem::copy_file(second.cert_file, cert, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(second.key_file, key, std::filesystem::copy_options::overwrite_existing);
  CHECK(served_common_name(port) == "first.test");  // nothing changes before the reload
  const ReloadSummary s = g.gw->reload(g.gw->definition());
  CHECK(s.listeners_kept == 1);
  CHECK(g.gw->local_endpoints().at(0).port() == port);
  CHECK(served_common_name(port) == "second.test");
}

TEST_CASE("reload: an unchanged upstream keeps its pooled connections, a changed one starts afresh") {
  RawServer up([](int fd) {
    std::string buf;
    while (auto head = read_head(fd, buf, 5s)) {
      if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nup")) return;
    }
  });
  TempDir dir;
  const std::string file = (dir.dir / "gateway.json").string();
  auto config_text = [&](const std::string& route_name, int connect_timeout_ms) {
    return R"({"workers": 1, "listeners": [{"address": "127.0.0.1", "port": 0}],
      "upstreams": {"svc": {"endpoints": ["127.0.0.1:)" +
           std::to_string(up.port()) + R"("], "connect_timeout_ms": )" + std::to_string(connect_timeout_ms) +
           R"(}},
      "middleware": [{"name": "header_rewrite", "options": {"response": {"set": {"x-gen": "1"}}}}],
      "routes": [{"name": ")" + route_name + R"(", "path": "/", "upstream": "svc"}]})";
  };
  write_file(file, config_text("first", 2000));
  GatewayConfig config = load_config_file(file);
  Gateway gw{config.options};
  apply(config, gw);
  gw.start();
  const unsigned short port = gw.local_endpoints().at(0).port();
  ConfigReloader reloader{gw, file, std::move(config)};
  auto three_requests = [&] {
    for (int i = 0; i < 3; ++i) {
      const auto r = exchange_raw(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
      CHECK(body_of(r) == "up");
    }
  };
  three_requests();
  CHECK(up.connections() == 1);

  // Routes change, the upstream does not: same object, same pool.
  std::string text = config_text("renamed", 2000);
  text.replace(text.find("\"port\": 0"), 9, "\"port\": " + std::to_string(port));
  write_file(file, text);
  ReloadResult r = reloader.reload();
  REQUIRE(r.ok);
  CHECK(r.objects_reused == 2);  // the upstream and the global middleware
  CHECK(r.objects_built == 0);
  three_requests();
  CHECK(up.connections() == 1);

  // The upstream's definition changes: a new upstream, new connections.
  text = config_text("renamed", 3000);
  text.replace(text.find("\"port\": 0"), 9, "\"port\": " + std::to_string(port));
  write_file(file, text);
  r = reloader.reload();
  REQUIRE(r.ok);
  CHECK(r.objects_reused == 1);
  CHECK(r.objects_built == 1);
  three_requests();
  CHECK(up.connections() == 2);
  gw.stop();
  gw.wait();
}

TEST_CASE("reload: a request in flight finishes on the configuration it started with") {
  RawServer slow([](int fd) {
    std::string buf;
    if (read_head(fd, buf, 5s)) {
      std::this_thread::sleep_for(300ms);
      send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow");
    }
  });
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(slow.port())});
  const auto port = g.start();
  std::string answer;
  std::thread in_flight([&] { answer = exchange_raw(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); });
  std::this_thread::sleep_for(100ms);
  // The route now answers locally; the upstream (and its pool) is gone from the configuration.
  GatewayDefinition next = g.gw->definition();
  next.routes.at(0).origin = says("local");
  g.gw->reload(next);
  CHECK(body_of(exchange_raw(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")) == "local");
  in_flight.join();
  CHECK(status_of(answer) == 200);
  CHECK(body_of(answer) == "slow");
}
