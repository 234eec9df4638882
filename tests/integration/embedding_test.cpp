// The gateway embedded in a host application: it runs on the host's io_context, owns no threads.
#include <doctest/doctest.h>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <thread>

#include "integration/fixture.hpp"
#include "support/raw_http.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

TEST_CASE("a gateway runs on the host's executor and stops when asked") {
  asio::io_context io;
  Gateway gw{io.get_executor()};
  gw.listen({.address = "127.0.0.1", .port = 0});
  gw.route({.path = "/", .origin = [](Exchange& ex) {
              return Flow::respond(Response(Status::ok, "host thread " + std::string(ex.request().path())));
            }});
  gw.start();
  const auto port = gw.local_endpoints().at(0).port();
  std::string reply;
  std::thread client([&] {
    reply = exchange_raw(port, "GET /embedded HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 3s);
    asio::post(io, [&] { gw.stop(); });
  });
  io.run_for(5s);  // returns once the gateway has drained: it leaves no work behind
  client.join();
  CHECK(status_of(reply) == 200);
  CHECK(reply.find("host thread /embedded") != std::string::npos);
  CHECK(io.stopped());
}

TEST_CASE("listeners bind IPv6 loopback and upstream names are resolved") {
  RawServer upstream([](int fd) {
    receive(fd, 2s, [](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; });
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nv6");
  });
  Gateway gw{GatewayOptions{.workers = 1}};
  gw.listen({.address = "::1", .port = 0});
  gw.route({.path = "/", .origin = Upstream::create({.name = "by-name", .endpoints = {"localhost:" + std::to_string(upstream.port())}})});
  gw.start();
  const auto ep = gw.local_endpoints().at(0);
  CHECK(ep.address().is_v6());
  // curl speaks to [::1]; the upstream is reached through a DNS name resolved in the background.
  std::string out;
  for (int i = 0; i < 50 && out != "v6"; ++i) {
    std::this_thread::sleep_for(20ms);
    FILE* p = ::popen(("curl -s -g 'http://[::1]:" + std::to_string(ep.port()) + "/x'").c_str(), "r");
    REQUIRE(p);
    char buf[64] = {};
    out.assign(buf, std::fread(buf, 1, sizeof buf - 1, p));
    ::pclose(p);
  }
  CHECK(out == "v6");
  gw.stop();
  gw.wait();
}
