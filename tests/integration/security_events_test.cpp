// Security events end to end: a gateway on loopback reports to syslog receivers this test runs
// itself (UDP, and TCP with octet counting), real requests trigger events, and what arrives is
// checked field by field against the field list of docs/observability.md ("Security events").
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/jwt_verifier.hpp"
#include "integration/fixture.hpp"
#include "support/jwt_signer.hpp"
#include "support/raw_http.hpp"
#include "support/test_certs.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// Every field an event may carry, as docs/observability.md lists them (leaf paths; labels.* is
// open-ended). The test fails if the gateway sends anything else.
const std::set<std::string> kDocumentedFields = {
    "@timestamp",   "message",         "ecs.version",          "event.kind",         "event.category",
    "event.type",   "event.action",    "event.outcome",        "event.reason",       "event.severity",
    "event.dataset", "event.module",   "service.name",         "source.ip",          "source.port",
    "client.ip",    "network.forwarded_ip", "url.path",        "http.request.method", "http.request.id",
    "http.response.status_code", "user.name", "rule.id",       "rule.name",          "trace.id",
    "tls.client.subject"};
const std::set<std::string> kRequiredFields = {"@timestamp", "message", "ecs.version", "event.kind",
                                               "event.category", "event.type", "event.action", "event.outcome",
                                               "event.severity", "event.dataset", "event.module", "service.name"};

void leaves(const json& j, const std::string& prefix, std::set<std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) leaves(v, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    out.insert(prefix);
  }
}

// Checks one event against the documented schema; returns its JSON.
json check_schema(const json& j) {
  std::set<std::string> fields;
  leaves(j, "", fields);
  for (const auto& f : fields) {
    CAPTURE(f);
    CHECK((kDocumentedFields.count(f) == 1 || f.starts_with("labels.")));
  }
  for (const auto& f : kRequiredFields) {
    CAPTURE(f);
    CHECK(fields.count(f) == 1);
  }
  CHECK(j["event"]["category"].is_array());
  CHECK(j["event"]["type"].is_array());
  CHECK(std::regex_match(j["@timestamp"].get<std::string>(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
  return j;
}

struct Syslog {
  int pri = 0;
  std::string timestamp, host, app, procid, msgid;
  json msg;
};

// Parses "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG" (RFC 5424, no structured data).
Syslog parse_5424(const std::string& m) {
  static const std::regex re(R"(^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) - (.*)$)");
  std::smatch g;
  Syslog s;
  REQUIRE_MESSAGE(std::regex_match(m, g, re), m);
  s.pri = std::stoi(g[1]);
  s.timestamp = g[2];
  s.host = g[3];
  s.app = g[4];
  s.procid = g[5];
  s.msgid = g[6];
  CHECK(std::regex_match(s.timestamp, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")));
  s.msg = json::parse(g[7].str());
  return s;
}

// Binds to 127.0.0.1:port (0: any free port) and sets `port` to the port bound.
int bound_socket(int type, unsigned short& port) {
  const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

// A syslog collector on 127.0.0.1: UDP datagrams, and one TCP connection of octet-counted frames.
class Collector {
 public:
  explicit Collector(unsigned short tcp = 0) : tcp_port(tcp) {
    udp_ = bound_socket(SOCK_DGRAM, udp_port);
    tcp_ = bound_socket(SOCK_STREAM, tcp_port);
    REQUIRE(::listen(tcp_, 4) == 0);
    thread_ = std::thread([this] { run(); });
  }
  ~Collector() {
    stop_ = true;
    thread_.join();
    ::close(udp_);
    ::close(tcp_);
    if (conn_ >= 0) ::close(conn_);
  }
  // Waits (bounded) until `n` messages arrived over each transport.
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout = 5s, std::size_t udp_n = std::size_t(-1)) {
    if (udp_n == std::size_t(-1)) udp_n = n;
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      {
        std::lock_guard lk(mu_);
        if (udp_msgs_.size() >= udp_n && tcp_msgs_.size() >= n) return true;
      }
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  std::vector<std::string> udp() {
    std::lock_guard lk(mu_);
    return udp_msgs_;
  }
  std::vector<std::string> tcp() {
    std::lock_guard lk(mu_);
    return tcp_msgs_;
  }
  unsigned short udp_port = 0, tcp_port = 0;

 private:
  void run() {
    std::string stream;
    while (!stop_) {
      pollfd p[3] = {{udp_, POLLIN, 0}, {tcp_, POLLIN, 0}, {conn_, POLLIN, 0}};
      if (::poll(p, conn_ >= 0 ? 3 : 2, 50) <= 0) continue;
      char buf[65536];
      if (p[0].revents & POLLIN) {
        const ssize_t n = ::recv(udp_, buf, sizeof buf, 0);
        if (n > 0) {
          std::lock_guard lk(mu_);
          udp_msgs_.emplace_back(buf, static_cast<std::size_t>(n));
        }
      }
      if ((p[1].revents & POLLIN) && conn_ < 0) conn_ = ::accept4(tcp_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn_ >= 0 && (p[2].revents & (POLLIN | POLLHUP))) {
        const ssize_t n = ::recv(conn_, buf, sizeof buf, 0);
        if (n <= 0) {
          ::close(conn_);
          conn_ = -1;
          continue;
        }
        stream.append(buf, static_cast<std::size_t>(n));
        // RFC 6587 octet counting: "<digits> <that many bytes>".
        for (;;) {
          const auto sp = stream.find(' ');
          if (sp == std::string::npos) break;
          const std::size_t len = std::stoul(stream.substr(0, sp));
          if (stream.size() < sp + 1 + len) break;
          std::lock_guard lk(mu_);
          tcp_msgs_.push_back(stream.substr(sp + 1, len));
          stream.erase(0, sp + 1 + len);
        }
      }
    }
  }
  int udp_ = -1, tcp_ = -1, conn_ = -1;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> udp_msgs_, tcp_msgs_;
  std::thread thread_;
};

std::shared_ptr<SecurityEvents> reporter_for(const Collector& c) {
  return std::make_shared<SecurityEvents>(SecurityEventsOptions{
      .sinks = {std::make_shared<SyslogEventSink>(SyslogEventSinkOptions{.port = c.udp_port, .hostname = "gw-test"}),
                std::make_shared<SyslogEventSink>(SyslogEventSinkOptions{
                    .transport = SyslogTransport::tcp, .port = c.tcp_port, .hostname = "gw-test"})}});
}

const json* find_action(const std::vector<Syslog>& msgs, std::string_view action) {
  for (const auto& m : msgs)
    if (m.msg.value(json::json_pointer("/event/action"), std::string()) == action) return &m.msg;
  return nullptr;
}

}  // namespace

TEST_CASE("security events: a refused token and a smuggling attempt reach UDP and TCP syslog collectors") {
  Collector collector;
  auto events = reporter_for(collector);
  const auto key = TestKey::generate("ES256");
  const auto rogue = TestKey::generate("ES256", /*fresh=*/true);
  auth::JwtVerifierOptions vo;
  vo.algorithms = {"ES256"};
  vo.issuers = {{"https://id.test", auth::StaticKeySource::from_jwks(key.jwks("k1").dump())}};
  auto verifier = std::make_shared<const auth::JwtVerifier>(std::move(vo));

  GatewayUnderTest g({.limits = {.max_header_count = 8}, .security_events = events});
  g.gw->route({.name = "orders",
               .path = "/orders",
               .middleware = {std::make_shared<const Authenticate>(AuthenticateOptions{.verifiers = {verifier}, .logger = null_logger()})},
               .origin = [](Exchange&) { return Flow::respond(Status::ok, "hi"); }});
  const auto port = g.start();

  const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string forged =
      make_token(rogue, {{"alg", "ES256"}, {"kid", "k9"}}, {{"iss", "https://id.test"}, {"sub", "mallory"}, {"exp", now + 300}});
  std::string r = exchange_raw(port, "GET /orders/7?x=1 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + forged +
                                         "\r\nConnection: close\r\n\r\n");
  CHECK(status_of(r) == 401);
  r = exchange_raw(port,
                   "POST /orders HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  CHECK(status_of(r) == 400);
  std::string many = "GET /orders HTTP/1.1\r\nHost: gw\r\n";
  for (int i = 0; i < 12; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  r = exchange_raw(port, many + "\r\n");
  CHECK(status_of(r) == 431);

  REQUIRE(events->flush());
  REQUIRE(collector.wait_for(3));
  const SecurityEventsStats stats = events->stats();
  CHECK(stats.total.emitted == 3);
  CHECK(stats.total.dropped == 0);

  for (const auto& transport : {collector.udp(), collector.tcp()}) {
    REQUIRE(transport.size() == 3);
    std::vector<Syslog> msgs;
    for (const auto& m : transport) {
      CHECK(m.find(forged) == std::string::npos);  // never the token
      msgs.push_back(parse_5424(m));
      check_schema(msgs.back().msg);
      CHECK(msgs.back().pri == 10 * 8 + 4);  // authpriv.warning
      CHECK(msgs.back().host == "gw-test");
      CHECK(msgs.back().app == "gatehouse");
      CHECK(msgs.back().procid == std::to_string(::getpid()));
    }

    const json* auth = find_action(msgs, "authentication-failure");
    REQUIRE(auth);
    const json& a = *auth;
    CHECK(a["event"]["kind"] == "event");
    CHECK(a["event"]["category"] == json::array({"authentication"}));
    CHECK(a["event"]["outcome"] == "failure");
    CHECK(a["source"]["ip"] == "127.0.0.1");
    CHECK(a["source"]["port"].is_number());
    CHECK(a["client"]["ip"] == "127.0.0.1");
    CHECK(a["url"]["path"] == "/orders/7");
    CHECK(a["http"]["request"]["method"] == "GET");
    CHECK(a["http"]["request"]["id"].get<std::string>().size() > 8);
    CHECK(a["http"]["response"]["status_code"] == 401);
    CHECK(a["labels"]["route"] == "orders");
    CHECK(a["labels"]["verifier"] == "jwt");
    CHECK(a["labels"]["key_id"] == "k9");
    CHECK_FALSE(a.contains("user"));

    const json* smuggling = find_action(msgs, "http-request-smuggling-suspected");
    REQUIRE(smuggling);
    CHECK((*smuggling)["event"]["category"] == json::array({"network", "web"}));
    CHECK((*smuggling)["http"]["response"]["status_code"] == 400);
    CHECK((*smuggling)["event"]["reason"].get<std::string>().find("Transfer-Encoding") != std::string::npos);

    const json* limit = find_action(msgs, "http-limit-exceeded");
    REQUIRE(limit);
    CHECK((*limit)["http"]["response"]["status_code"] == 431);
  }
  for (const auto& m : collector.udp()) CHECK(parse_5424(m).msgid.size() <= 32);
}

TEST_CASE("security events: TLS handshake failures and rejected client certificates") {
  Collector collector;
  auto events = reporter_for(collector);
  TestPki pki;
  TestPki other("an untrusted CA");
  const auto server = pki.issue("localhost", {"localhost"}, {"127.0.0.1"});
  const auto stranger = other.issue("stranger", {}, {}, /*client=*/true);
  const auto alice = pki.issue("alice", {}, {}, /*client=*/true);
  GatewayUnderTest g({.security_events = events});
  g.gw->route({.path = "/", .origin = [](Exchange& ex) {
                 // A decision about a request on an mTLS connection: the event names the certificate.
                 ex.report(SecurityEvent{.kind = SecurityEventKind::authorization_denied, .reason = "probe"});
                 return Flow::respond(Status::forbidden, "no");
               }});
  const auto port = g.start(ServerTls{.certificates = {server}, .client_ca_file = pki.ca_cert});
  const std::string p = std::to_string(port);
  const auto accepted = run_command("timeout 20 curl -sS --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code}' --cacert " +
                                    pki.ca_cert + " --resolve localhost:" + p + ":127.0.0.1 --cert " + alice.cert_file +
                                    " --key " + alice.key_file + " https://localhost:" + p + "/");
  CHECK(accepted.output == "403");

  // Plain HTTP to the TLS port.
  exchange_raw(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 2s);
  // A client certificate from a CA the listener does not trust.
  run_command("openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " -servername localhost -cert " +
              stranger.cert_file + " -key " + stranger.key_file + " </dev/null");

  REQUIRE(events->flush());
  REQUIRE(collector.wait_for(3));
  std::vector<Syslog> msgs;
  for (const auto& m : collector.tcp()) msgs.push_back(parse_5424(m));
  const json* tls = find_action(msgs, "tls-handshake-failure");
  REQUIRE(tls);
  check_schema(*tls);
  CHECK((*tls)["source"]["ip"] == "127.0.0.1");
  CHECK((*tls)["event"]["category"] == json::array({"network"}));
  const json* cert = find_action(msgs, "client-certificate-rejected");
  REQUIRE(cert);
  check_schema(*cert);
  CHECK((*cert)["event"]["outcome"] == "failure");
  CHECK((*cert)["event"]["reason"] == "unable to get local issuer certificate");
  CHECK((*cert)["labels"]["verify_error"] == "20");  // X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
  CHECK((*cert)["tls"]["client"]["subject"] == "CN=stranger,O=gatehouse tests");
  CHECK_FALSE(tls->contains("tls"));  // no certificate at all
  const json* denied = find_action(msgs, "authorization-denied");
  REQUIRE(denied);
  check_schema(*denied);
  CHECK((*denied)["tls"]["client"]["subject"] == "CN=alice,O=gatehouse tests");
}

TEST_CASE("security events: a collector that is away never slows requests; TCP connects when it comes") {
  unsigned short tcp_port = 0;
  ::close(bound_socket(SOCK_STREAM, tcp_port));  // a free port, nothing listens there yet
  auto sink = std::make_shared<SyslogEventSink>(
      SyslogEventSinkOptions{.transport = SyslogTransport::tcp, .port = tcp_port, .max_backoff = 200ms});
  auto events = std::make_shared<SecurityEvents>(SecurityEventsOptions{.sinks = {sink}});
  GatewayUnderTest g({.security_events = events});
  g.gw->route({.path = "/", .origin = [](Exchange&) { return Flow::respond(Status::ok, "hi"); }});
  const auto port = g.start();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) CHECK(status_of(exchange_raw(port, "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n")) == 400);
  CHECK(since(t0) < 3000ms);
  REQUIRE(events->flush());
  CHECK(events->stats().total.emitted == 20);
  CHECK(sink->stats().sent == 0);
  CHECK(sink->stats().connects == 0);

  // The collector comes up: the buffered events follow within the backoff.
  Collector collector(tcp_port);
  REQUIRE(collector.wait_for(20, 5s, 0));
  CHECK(sink->stats().connects == 1);
  CHECK(sink->stats().sent == 20);
  CHECK(sink->stats().dropped == 0);
  CHECK(parse_5424(collector.tcp().at(0)).msg["event"]["action"] == "http-request-smuggling-suspected");
}
