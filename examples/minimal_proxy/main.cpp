// A working reverse proxy in a few lines: every request on :8080 goes to the service on :9000,
// with a request id, X-Forwarded-* headers and a JSON access log on stdout.
#include <gatehouse/gatehouse.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

namespace gh = gatehouse;

int main(int argc, char** argv) {
  const std::string backend = argc > 1 ? argv[1] : "127.0.0.1:9000";

  gh::Gateway gw{gh::GatewayOptions{.workers = 2}};
  gw.listen({.address = "127.0.0.1", .port = 8080});
  gw.use<gh::AccessLog>();
  gw.route({.name = "health", .path = "/healthz", .prefix = false,
            .origin = [](gh::Exchange&) { return gh::Flow::respond(gh::Response(gh::Status::ok, "ok\n")); }});
  gw.route({.name = "backend", .path = "/",
            .origin = gh::Upstream::create({.name = "backend", .endpoints = {backend}})});
  gw.start();

  asio::io_context signals;  // the gateway runs its own workers; main only waits for a signal
  asio::signal_set stop{signals, SIGINT, SIGTERM};
  stop.async_wait([&](auto, auto) { gw.stop(); });
  signals.run();
  gw.wait();
}
// try: python3 -m http.server 9000 --bind 127.0.0.1 &
// try: ./build/examples/minimal_proxy 127.0.0.1:9000
// try: curl -i http://127.0.0.1:8080/            (proxied, with x-request-id)
// try: curl -i http://127.0.0.1:8080/healthz     (answered by the gateway)
