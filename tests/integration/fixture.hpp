// A gateway on a loopback port, in this process, with one worker thread: tests talk to it with
// real sockets (raw, curl, openssl) and point it at real upstream servers.
#pragma once
#include <gatehouse/gatehouse.hpp>

#include <memory>
#include <string>

namespace gatehouse::test {

struct GatewayUnderTest {
  explicit GatewayUnderTest(GatewayOptions options = {}) {
    if (options.workers == 0) options.workers = 1;
    gw = std::make_unique<Gateway>(options);
  }
  /// Listens on 127.0.0.1:0 (plus TLS if given), starts, and returns the first bound port.
  unsigned short start(std::optional<ServerTls> tls = std::nullopt) {
    gw->listen({.address = "127.0.0.1", .port = 0, .tls = std::move(tls)});
    gw->start();
    return gw->local_endpoints().at(0).port();
  }
  ~GatewayUnderTest() {
    gw->stop();
    gw->wait();
  }
  std::unique_ptr<Gateway> gw;
};

inline std::shared_ptr<Upstream> upstream_at(unsigned short port, UpstreamOptions o = {}) {
  if (o.name.empty()) o.name = "svc";
  o.endpoints = {"127.0.0.1:" + std::to_string(port)};
  return Upstream::create(std::move(o));
}

}  // namespace gatehouse::test
