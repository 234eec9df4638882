// A program that uses an installed gatehouse the way an application does: the umbrella header,
// the test helpers, and a Gateway embedded in the application's own io_context (the application
// and the library share Asio's per-thread state and the io_context's services, so both must be
// compiled with the flags the library exports). Built by tests/install/run.sh against pkg-config
// and as a Meson subproject; exits non-zero when something is wrong.
#include <gatehouse/gatehouse.hpp>
#include <gatehouse/testing.hpp>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <system_error>
#include <thread>

namespace gh = gatehouse;
using namespace std::chrono_literals;

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "consumer: FAILED: %s\n", what);
    ++failures;
  }
}

struct RequireApiKey final : gh::Middleware {
  gh::Flow on_request(gh::Exchange& ex) const override {
    if (ex.request().headers().contains("x-api-key")) return gh::Flow::next();
    return gh::Flow::respond(gh::Status::unauthorized, "API key required");
  }
};

// gatehouse/testing.hpp: a middleware driven without sockets.
void middleware_without_sockets() {
  auto anonymous = gh::testing::exchange("GET", "/orders");
  check(gh::testing::run_chain({std::make_shared<RequireApiKey>()}, anonymous).status == 401,
        "run_chain refuses a request without a key");
  auto keyed = gh::testing::exchange("GET", "/orders", {{"x-api-key", "k1"}});
  check(gh::testing::run_chain({std::make_shared<RequireApiKey>()}, keyed).status == 200,
        "run_chain passes a request with a key");
}

// A Gateway on the application's io_context, next to the application's own timer; a client thread
// sends one request over loopback.
void gateway_on_the_host_executor() {
  asio::io_context io;
  gh::Gateway gw{io.get_executor(), gh::GatewayOptions{.drain_timeout = 1s}};
  gw.listen({.address = "127.0.0.1", .port = 0});
  gw.use<RequireApiKey>();
  gw.route({.path = "/hello", .origin = [](gh::Exchange& ex) {
              return gh::Flow::respond(gh::Response(gh::Status::ok, "hello " + std::string(ex.request().path())));
            }});
  gw.start();
  const auto endpoint = gw.local_endpoints().at(0);

  bool timer_fired = false;
  asio::steady_timer timer(io, 10ms);
  timer.async_wait([&](std::error_code ec) { timer_fired = !ec; });

  std::string reply;
  std::thread client([&] {
    try {
      asio::io_context client_io;
      asio::ip::tcp::socket socket(client_io);
      socket.connect(endpoint);
      // Never wait for ever: an answer that does not come within 5 s fails the check below.
      const timeval timeout{.tv_sec = 5, .tv_usec = 0};
      ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      asio::write(socket, asio::buffer(std::string(
                              "GET /hello HTTP/1.1\r\nHost: a\r\nX-Api-Key: k\r\nConnection: close\r\n\r\n")));
      std::error_code ec;
      asio::read(socket, asio::dynamic_buffer(reply), ec);  // until the gateway closes
    } catch (const std::exception& e) {
      std::fprintf(stderr, "consumer: client: %s\n", e.what());
    }
    asio::post(io, [&] { gw.stop(); });
  });
  io.run_for(10s);  // returns when the gateway has stopped and the timer has fired
  client.join();
  if (!io.stopped()) {  // the gateway did not stop (or never got the request): stop it anyway
    gw.stop();
    io.restart();
    io.run_for(2s);
  }
  check(reply.rfind("HTTP/1.1 200", 0) == 0, "the gateway answers 200");
  check(reply.find("hello /hello") != std::string::npos, "the handler's body reaches the client");
  check(timer_fired, "the application's timer fires on the shared io_context");
  check(io.stopped(), "the gateway leaves no work behind once stopped");
}

}  // namespace

int main() {
  try {
    middleware_without_sockets();
    gateway_on_the_host_executor();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: exception: %s\n", e.what());
    return 1;
  }
  if (failures != 0) return 1;
  std::puts("consumer: ok");
  return 0;
}
