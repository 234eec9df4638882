// TLS end to end on loopback: termination (curl, openssl s_client), protocol versions, ALPN, SNI,
// the handshake timeout, and TLS (and mTLS) from the gateway to a cpp-httplib SSLServer upstream.
// Certificates come from TestPki, generated at test time.
//
// httplib::SSLServer needs CPPHTTPLIB_OPENSSL_SUPPORT. The cpp-httplib pkg-config file already
// defines it for every test file (it changes the layout of httplib::Request, so all files that include
// httplib.h in one program must agree on it); define it here only if a build lacks it.
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#include <httplib.h>

#include <doctest/doctest.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/fixture.hpp"
#include "support/httplib_server.hpp"
#include "support/raw_http.hpp"
#include "support/test_certs.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;
std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// openssl s_client against the gateway, never waiting on the terminal or forever.
CommandResult s_client(unsigned short port, const std::string& args) {
  return run_command("timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " " + args +
                     " </dev/null");
}

// The subject line s_client prints for the server certificate ("subject=CN = a.test" in 3.0).
std::string subject_line(const std::string& out) {
  const auto p = out.find("\nsubject=");
  if (p == std::string::npos) return {};
  return out.substr(p + 1, out.find('\n', p + 1) - (p + 1));
}

// A service (plain or TLS) that records the X-Forwarded-Proto it saw.
template <class Server>
struct Service {
  template <class... Args>
  explicit Service(Args&&... args) : server(std::forward<Args>(args)...) {
    REQUIRE(server.is_valid());
    server.Get(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      ++hits;
      {
        std::lock_guard l(mu);
        forwarded_proto = req.get_header_value("X-Forwarded-Proto");
      }
      res.set_content("secure hello path=" + req.path, "text/plain");
    });
    port = runner.start(server);
  }
  std::string proto() {
    std::lock_guard l(mu);
    return forwarded_proto;
  }
  Server server;
  unsigned short port = 0;
  std::atomic<int> hits{0};
  std::mutex mu;
  std::string forwarded_proto;
  ServerThread runner;  // last: stops the server before the members its handlers use
};


// A blocking-handshake, poll-driven TLS client (OpenSSL directly), so tests can keep a TLS
// connection open and watch when the gateway closes it.
class TlsClient {
 public:
  /// `corked`: the handshake's last flight stays corked (see cork()) until the caller uncorks.
  TlsClient(unsigned short port, const std::string& ca_file, const std::string& host, bool corked = false) {
    fd_ = connect_loopback(port);
    if (corked) cork(true);
    timeval tv{3, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_file(ctx_, ca_file.c_str());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, host.c_str());
    SSL_set1_host(ssl_, host.c_str());
    connected_ = SSL_connect(ssl_) == 1;
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~TlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    ::close(fd_);
  }
  bool connected() const { return connected_; }
  /// Corked, what is written leaves in one TCP segment when uncorked: TLS records that arrive
  /// together.
  void cork(bool on) {
    const int v = on ? 1 : 0;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &v, sizeof v);
  }
  bool write(std::string_view bytes) {
    while (!bytes.empty()) {
      const int n = SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
      if (n > 0) {
        bytes.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return false;
      pollfd p{fd_, static_cast<short>(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
      if (::poll(&p, 1, 3000) <= 0) return false;
    }
    return true;
  }
  /// Reads until the gateway closes (TLS close_notify or TCP EOF), `stop_when` holds, or timeout.
  UntilClose read(milliseconds timeout, const std::function<bool(const std::string&)>& stop_when = {}) {
    UntilClose r;
    const auto t0 = SteadyClock::now();
    const auto end = t0 + timeout;
    char tmp[16384];
    for (;;) {
      const int n = SSL_read(ssl_, tmp, sizeof tmp);
      if (n > 0) {
        r.bytes.append(tmp, static_cast<std::size_t>(n));
        if (stop_when && stop_when(r.bytes)) break;
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        const auto left = std::chrono::duration_cast<milliseconds>(end - SteadyClock::now()).count();
        if (left <= 0) break;
        pollfd p{fd_, static_cast<short>(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
        continue;
      }
      r.closed = true;  // close_notify, EOF or reset
      break;
    }
    r.elapsed = since(t0);
    return r;
  }

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool connected_ = false;
};

}  // namespace

TEST_CASE("tls: termination with curl reaches a plain upstream that sees X-Forwarded-Proto: https") {
  TestPki pki;
  const auto leaf = pki.issue("localhost", {"localhost"}, {"127.0.0.1"});
  Service<httplib::Server> svc;
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(svc.port)});
  const auto port = g.start(ServerTls{.certificates = {leaf}});
  const std::string out = pki.dir + "/curl.out";
  const std::string p = std::to_string(port);
  const auto res = run_command("timeout 20 curl -sS --noproxy '*' --max-time 10 --cacert " + pki.ca_cert +
                               " --resolve localhost:" + p + ":127.0.0.1 -o " + out + " -w '%{http_code}' https://localhost:" +
                               p + "/x");
  CAPTURE(res.output);
  CHECK(res.exit_code == 0);
  CHECK(res.output == "200");
  CHECK(read_file(out) == "secure hello path=/x");
  CHECK(svc.proto() == "https");
  std::remove(out.c_str());
}

TEST_CASE("tls: protocol versions, ALPN and SNI as seen by openssl s_client") {
  TestPki pki;
  const auto a = pki.issue("a.test", {"a.test"});
  const auto b = pki.issue("b.test", {"b.test"});
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = [](Exchange&) { return Flow::respond(Response(Status::ok, "ok")); }});
  const auto port = g.start(ServerTls{.certificates = {a, b}});

  SUBCASE("TLS 1.1 is refused, even from a client willing to use it") {
    const auto r = s_client(port, "-tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'");
    CAPTURE(r.output);
    CHECK(r.exit_code != 0);
    CHECK(r.output.find("alert protocol version") != std::string::npos);  // refused by the gateway
    CHECK(r.output.find("Cipher is (NONE)") != std::string::npos);
    CHECK(r.output.find("BEGIN CERTIFICATE") == std::string::npos);
  }
  SUBCASE("TLS 1.2 and 1.3 work") {
    auto r = s_client(port, "-tls1_3 -CAfile " + pki.ca_cert);
    CAPTURE(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("TLSv1.3") != std::string::npos);
    CHECK(r.output.find("Verify return code: 0 (ok)") != std::string::npos);
    r = s_client(port, "-tls1_2 -CAfile " + pki.ca_cert);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("Protocol  : TLSv1.2") != std::string::npos);
  }
  SUBCASE("ALPN picks http/1.1 out of h2,http/1.1") {
    const auto r = s_client(port, "-alpn h2,http/1.1");
    CAPTURE(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("ALPN protocol: http/1.1") != std::string::npos);
  }
  SUBCASE("ALPN with h2 only: no protocol, the handshake still succeeds") {
    const auto r = s_client(port, "-alpn h2");
    CAPTURE(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("ALPN protocol: h2") == std::string::npos);
  }
  SUBCASE("SNI chooses the certificate") {
    auto r = s_client(port, "-servername a.test -CAfile " + pki.ca_cert + " -verify_hostname a.test");
    CAPTURE(r.output);
    CHECK(r.exit_code == 0);
    CHECK(subject_line(r.output).find("CN = a.test") != std::string::npos);
    CHECK(r.output.find("Verify return code: 0 (ok)") != std::string::npos);
    r = s_client(port, "-servername b.test -CAfile " + pki.ca_cert + " -verify_hostname b.test");
    CHECK(r.exit_code == 0);
    CHECK(subject_line(r.output).find("CN = b.test") != std::string::npos);
    CHECK(r.output.find("Verify return code: 0 (ok)") != std::string::npos);
    r = s_client(port, "-servername unknown.test");  // no match: the first certificate is the default
    CHECK(r.exit_code == 0);
    CHECK(subject_line(r.output).find("CN = a.test") != std::string::npos);
  }
}

TEST_CASE("tls: a client that does not complete the handshake is disconnected after handshake_timeout") {
  TestPki pki;
  const auto leaf = pki.issue("localhost", {"localhost"});
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = [](Exchange&) { return Flow::respond(Response(Status::ok, "ok")); }});
  const auto port = g.start(ServerTls{.certificates = {leaf}, .handshake_timeout = 300ms});

  SUBCASE("silent client") {
    const int fd = connect_loopback(port);
    const auto r = read_until_close(fd, 3s);
    ::close(fd);
    CHECK(r.closed);
    CHECK(r.bytes.empty());
    CHECK(r.elapsed >= 250ms);
    CHECK(r.elapsed < 1000ms);
  }
  SUBCASE("client that stops inside its ClientHello") {
    const int fd = connect_loopback(port);
    send_all(fd, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
    const auto r = read_until_close(fd, 3s);
    ::close(fd);
    CHECK(r.closed);
    CHECK(r.elapsed < 1000ms);
  }
}

TEST_CASE("tls: to the upstream, verified against the configured CA and name") {
  TestPki pki;
  const auto server_cert = pki.issue("localhost", {"localhost"}, {"127.0.0.1"});
  Service<httplib::SSLServer> svc(server_cert.cert_file.c_str(), server_cert.key_file.c_str());
  GatewayUnderTest g;
  auto tls_upstream = [&](UpstreamTls tls) {
    return upstream_at(svc.port, {.name = "tls", .tls = std::move(tls)});
  };
  TestPki other("another test CA");
  g.gw->route({.path = "/good", .origin = tls_upstream({.ca_file = pki.ca_cert, .server_name = "localhost"})});
  g.gw->route({.path = "/other-ca", .origin = tls_upstream({.ca_file = other.ca_cert, .server_name = "localhost"})});
  g.gw->route({.path = "/wrong-name", .origin = tls_upstream({.ca_file = pki.ca_cert, .server_name = "wrong.test"})});
  const auto port = g.start();

  std::string r = exchange_raw(port, "GET /good HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 5s);
  CHECK(status_of(r) == 200);
  CHECK(body_of(r) == "secure hello path=/good");
  CHECK(svc.proto() == "http");  // the client spoke plain HTTP to the gateway
  const int hits = svc.hits;
  r = exchange_raw(port, "GET /other-ca HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 5s);
  CHECK(status_of(r) == 502);
  r = exchange_raw(port, "GET /wrong-name HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 5s);
  CHECK(status_of(r) == 502);
  CHECK(svc.hits == hits);  // no request went over an unverified connection
}

TEST_CASE("tls: mTLS to the upstream works only with the client certificate") {
  TestPki pki;
  const auto server_cert = pki.issue("localhost", {"localhost"}, {"127.0.0.1"});
  const auto client_cert = pki.issue("gatehouse-client", {}, {}, /*client=*/true);
  Service<httplib::SSLServer> svc(server_cert.cert_file.c_str(), server_cert.key_file.c_str(), pki.ca_cert.c_str());
  GatewayUnderTest g;
  g.gw->route({.path = "/with", .origin = upstream_at(svc.port, {.name = "with", .tls = UpstreamTls{
      .ca_file = pki.ca_cert, .server_name = "localhost", .client_certificate = client_cert}})});
  g.gw->route({.path = "/without", .origin = upstream_at(svc.port, {.name = "without", .tls = UpstreamTls{
      .ca_file = pki.ca_cert, .server_name = "localhost"}})});
  const auto port = g.start();

  std::string r = exchange_raw(port, "GET /without HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 5s);
  CHECK(status_of(r) == 502);
  CHECK(svc.hits == 0);
  r = exchange_raw(port, "GET /with HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 5s);
  CHECK(status_of(r) == 200);
  CHECK(body_of(r) == "secure hello path=/with");
  CHECK(svc.hits == 1);
}

TEST_CASE("tls: pipelined requests and 1 MiB bodies both ways on one connection, TLS on both sides") {
  // The gateway's TLS stream gathers small writes into records, sends large bodies in few writes,
  // and reads requests that arrived together with an earlier one (held above the socket).
  TestPki pki;
  const auto leaf = pki.issue("localhost", {"localhost"}, {"127.0.0.1"});
  std::string big(1 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  httplib::SSLServer svc(leaf.cert_file.c_str(), leaf.key_file.c_str());
  REQUIRE(svc.is_valid());
  svc.Get("/big", [&](const httplib::Request&, httplib::Response& res) { res.set_content(big, "text/plain"); });
  svc.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
    unsigned sum = 0;
    for (unsigned char c : req.body) sum = sum * 31 + c;
    res.set_content("size=" + std::to_string(req.body.size()) + " sum=" + std::to_string(sum), "text/plain");
  });
  ServerThread runner;  // after what the handlers use: stops the server first
  const auto svc_port = runner.start(svc);
  GatewayUnderTest g;
  g.gw->route({.path = "/hello", .origin = [](Exchange&) { return Flow::respond(Response(Status::ok, "ok")); }});
  g.gw->route({.path = "/", .origin = upstream_at(svc_port, {.name = "tls", .tls = UpstreamTls{
      .ca_file = pki.ca_cert, .server_name = "localhost"}})});
  const auto port = g.start(ServerTls{.certificates = {leaf}});
  TlsClient c(port, pki.ca_cert, "localhost");
  REQUIRE(c.connected());

  // Two requests in one TLS record, then two records in one TCP segment (received together, the
  // second waits above the socket): each must be answered without more bytes from the client.
  REQUIRE(c.write("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\nGET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  c.cork(true);
  REQUIRE(c.write("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  REQUIRE(c.write("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  c.cork(false);
  // A request in the same segment as the client's last handshake flight: received with the
  // handshake, it waits above the socket before the first request is even looked for.
  TlsClient early(port, pki.ca_cert, "localhost", /*corked=*/true);
  REQUIRE(early.connected());
  REQUIRE(early.write("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  early.cork(false);
  const auto first = early.read(3s, [](const std::string& s) { return has_complete_response(s); });
  CHECK(status_of(first.bytes) == 200);

  auto count = [](const std::string& s, std::string_view what) {
    std::size_t n = 0;
    for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
    return n;
  };
  const auto four = c.read(3s, [&](const std::string& s) { return count(s, "\r\n\r\nok") == 4; });
  CHECK(count(four.bytes, "HTTP/1.1 200") == 4);
  CHECK(!four.closed);

  REQUIRE(c.write("GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  const auto got = c.read(10s, [](const std::string& s) { return has_complete_response(s); });
  CHECK(status_of(got.bytes) == 200);
  CHECK(body_of(got.bytes).size() == big.size());
  CHECK(body_of(got.bytes) == big);

  unsigned sum = 0;
  for (unsigned char ch : big) sum = sum * 31 + ch;
  REQUIRE(c.write("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::to_string(big.size()) +
                  "\r\n\r\n" + big));
  const auto echoed = c.read(10s, [](const std::string& s) { return has_complete_response(s); });
  CHECK(status_of(echoed.bytes) == 200);
  CHECK(body_of(echoed.bytes) == "size=" + std::to_string(big.size()) + " sum=" + std::to_string(sum));
  CHECK(!echoed.closed);

  // A client that negotiated 512-byte records (RFC 6066 max_fragment_length) gets 32 records per
  // 16 KiB of body: the whole 1 MiB still arrives.
  const auto small_records = run_command(
      "printf 'GET /big HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | timeout 10 openssl s_client "
      "-connect 127.0.0.1:" + std::to_string(port) + " -maxfraglen 512 -tls1_2 -quiet -CAfile " + pki.ca_cert +
      " 2>/dev/null | wc -c");
  CAPTURE(small_records.output);
  CHECK(std::stoul("0" + small_records.output) > big.size());
}

TEST_CASE("tls: many keep-alive TLS connections waiting at once are all served at once and once parked") {
  // More than a worker lets wait inside their coroutine (64): the rest wait for readiness, with
  // no buffer; after the sweep all of them are parked. Each must read its next request in full.
  TestPki pki;
  const auto leaf = pki.issue("localhost", {"localhost"});
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = [](Exchange&) { return Flow::respond(Response(Status::ok, "ok")); }});
  const auto port = g.start(ServerTls{.certificates = {leaf}});
  std::vector<std::unique_ptr<TlsClient>> clients;
  for (int i = 0; i < 80; ++i) {
    clients.push_back(std::make_unique<TlsClient>(port, pki.ca_cert, "localhost"));
    REQUIRE(clients.back()->connected());
  }
  const auto round = [&clients](const char* when) {
    CAPTURE(when);
    for (auto& c : clients) REQUIRE(c->write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    int ok = 0;
    for (auto& c : clients) {
      const auto r = c->read(3s, [](const std::string& s) { return has_complete_response(s); });
      ok += status_of(r.bytes) == 200 && body_of(r.bytes) == "ok";
    }
    CHECK(ok == 80);
  };
  round("first request");
  round("at once");
  std::this_thread::sleep_for(1700ms);  // past the worker's sweep: parked
  round("once parked");
}

TEST_CASE("tls: an idle keep-alive TLS connection is closed after idle_timeout") {
  TestPki pki;
  const auto leaf = pki.issue("localhost", {"localhost"});
  // idle_timeout much shorter than header_timeout: the idle limit must be the one that applies.
  GatewayUnderTest g(GatewayOptions{.limits = {.header_timeout = 5000ms, .idle_timeout = 300ms}});
  g.gw->route({.path = "/", .origin = [](Exchange&) { return Flow::respond(Response(Status::ok, "ok")); }});
  const auto port = g.start(ServerTls{.certificates = {leaf}});
  TlsClient c(port, pki.ca_cert, "localhost");
  REQUIRE(c.connected());
  REQUIRE(c.write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  const auto first = c.read(3s, [](const std::string& s) { return has_complete_response(s); });
  CHECK(status_of(first.bytes) == 200);
  const auto r = c.read(6s);  // long enough to see when it does close
  CHECK(r.closed);
  CHECK(r.bytes.empty());
  CHECK(r.elapsed < 1000ms);
  MESSAGE("idle TLS connection closed after " << r.elapsed.count() << " ms (idle_timeout 300 ms)");
}

TEST_CASE("tls: graceful stop closes idle keep-alive TLS connections at once") {
  TestPki pki;
  const auto leaf = pki.issue("localhost", {"localhost"});
  GatewayUnderTest g(GatewayOptions{.drain_timeout = 3000ms});
  g.gw->route({.path = "/", .origin = [](Exchange&) { return Flow::respond(Response(Status::ok, "ok")); }});
  const auto port = g.start(ServerTls{.certificates = {leaf}});
  TlsClient c(port, pki.ca_cert, "localhost");
  REQUIRE(c.connected());
  REQUIRE(c.write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  const auto first = c.read(3s, [](const std::string& s) { return has_complete_response(s); });
  CHECK(status_of(first.bytes) == 200);
  const auto t0 = SteadyClock::now();
  g.gw->stop();
  const auto r = c.read(4s);
  CHECK(r.closed);
  CHECK(r.elapsed < 500ms);
  g.gw->wait();
  const auto waited = since(t0);
  CHECK(waited < 1000ms);
  MESSAGE("idle TLS connection closed " << r.elapsed.count() << " ms after stop(); wait() returned after "
                                        << waited.count() << " ms (drain_timeout 3000 ms)");
}

TEST_CASE("tls: a close-delimited upstream response is complete only with close_notify") {
  TestPki pki;
  const auto server_cert = pki.issue("localhost", {"localhost"}, {"127.0.0.1"});
  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  REQUIRE(SSL_CTX_use_certificate_chain_file(sctx, server_cert.cert_file.c_str()) == 1);
  REQUIRE(SSL_CTX_use_PrivateKey_file(sctx, server_cert.key_file.c_str(), SSL_FILETYPE_PEM) == 1);
  std::atomic<bool> clean_close{false};
  // A TLS upstream whose body ends with the connection: with close_notify (clean) or without
  // (truncated, as an attacker on the path could do).
  RawServer up([&](int fd) {
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SSL* ssl = SSL_new(sctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      std::string req;
      char tmp[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        const int n = SSL_read(ssl, tmp, sizeof tmp);
        if (n <= 0) break;
        req.append(tmp, static_cast<std::size_t>(n));
      }
      const std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part ";
      SSL_write(ssl, resp.data(), static_cast<int>(resp.size()));
      std::this_thread::sleep_for(50ms);
      if (clean_close) SSL_shutdown(ssl);
    }
    SSL_free(ssl);  // no SSL_shutdown: the TCP connection just closes
  });
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = upstream_at(up.port(), {.tls = UpstreamTls{.ca_file = pki.ca_cert, .server_name = "localhost"}})});
  const auto port = g.start();

  SUBCASE("with close_notify: complete, with the terminating chunk") {
    clean_close = true;
    const int fd = connect_loopback(port);
    send_all(fd, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    const std::string r = receive(fd, 3s, [](const std::string& s) { return s.find("\r\n0\r\n\r\n") != std::string::npos; });
    ::close(fd);
    CHECK(status_of(r) == 200);
    CHECK(body_of(r) == "b\r\nfirst part \r\n0\r\n\r\n");
  }
  SUBCASE("without close_notify: truncated, so the client must not see a complete response") {
    clean_close = false;
    const int fd = connect_loopback(port);
    send_all(fd, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    const auto r = read_until_close(fd, 3s);
    ::close(fd);
    CHECK(status_of(r.bytes) == 200);
    CHECK(r.bytes.find("first part ") != std::string::npos);
    CHECK(r.bytes.find("\r\n0\r\n\r\n") == std::string::npos);
    CHECK(r.closed);
  }
  SSL_CTX_free(sctx);
}

TEST_CASE("tls: to an upstream given by IP address, the certificate must carry that address") {
  TestPki pki;
  const auto with_ip = pki.issue("with-ip", {"localhost"}, {"127.0.0.1"});
  const auto without_ip = pki.issue("without-ip", {"localhost"});
  Service<httplib::SSLServer> good(with_ip.cert_file.c_str(), with_ip.key_file.c_str());
  Service<httplib::SSLServer> bad(without_ip.cert_file.c_str(), without_ip.key_file.c_str());
  GatewayUnderTest g;
  // No server_name: the endpoint's host, 127.0.0.1, is what must be verified.
  g.gw->route({.path = "/good", .origin = upstream_at(good.port, {.name = "good", .tls = UpstreamTls{.ca_file = pki.ca_cert}})});
  g.gw->route({.path = "/bad", .origin = upstream_at(bad.port, {.name = "bad", .tls = UpstreamTls{.ca_file = pki.ca_cert}})});
  const auto port = g.start();
  std::string r = exchange_raw(port, "GET /good HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 5s);
  CHECK(status_of(r) == 200);
  r = exchange_raw(port, "GET /bad HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 5s);
  CHECK(status_of(r) == 502);
  CHECK(bad.hits == 0);
}

TEST_CASE("tls: a listener with client_ca_file requires a client certificate (curl)") {
  TestPki pki;
  const auto leaf = pki.issue("localhost", {"localhost"});
  const auto client = pki.issue("curl-client", {}, {}, /*client=*/true);
  GatewayUnderTest g;
  g.gw->route({.path = "/", .origin = [](Exchange&) { return Flow::respond(Response(Status::ok, "mutual")); }});
  const auto port = g.start(ServerTls{.certificates = {leaf}, .client_ca_file = pki.ca_cert});
  const std::string p = std::to_string(port);
  const std::string base = "timeout 20 curl -sS --noproxy '*' --max-time 10 --cacert " + pki.ca_cert + " --resolve localhost:" +
                           p + ":127.0.0.1 -w ' %{http_code}' ";
  auto r = run_command(base + "--cert " + client.cert_file + " --key " + client.key_file + " https://localhost:" + p + "/");
  CAPTURE(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output == "mutual 200");
  r = run_command(base + "https://localhost:" + p + "/");
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("mutual") == std::string::npos);
}
