// A load-balancing policy of your own, in a few lines: requests of one tenant (the X-Tenant header)
// always go to the same instance, so its cache stays warm there; a retry goes to the next instance;
// requests without the header are spread round robin.
#include <gatehouse/gatehouse.hpp>

#include <functional>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

namespace gh = gatehouse;

class TenantAffinity final : public gh::LoadBalancer {
 public:
  std::size_t pick(const gh::PickRequest& r) override {
    const auto tenant = r.exchange.request().headers().get("x-tenant");
    const std::size_t home = tenant ? std::hash<std::string_view>{}(*tenant) : next_++;
    return (home + r.attempt) % r.endpoints.size();  // one gateway worker owns this object: no locks
  }

 private:
  std::size_t next_ = 0;
};

int main(int argc, char** argv) {
  std::vector<std::string> instances(argv + 1, argv + argc);
  if (instances.empty()) instances = {"127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"};

  gh::Gateway gw{gh::GatewayOptions{.workers = 2}};
  gw.listen({.address = "127.0.0.1", .port = 8080});
  gw.use<gh::AccessLog>();
  gw.route({.name = "api", .path = "/",
            .origin = gh::Upstream::create({.name = "api",
                                            .endpoints = instances,
                                            .load_balancer = [] { return std::make_unique<TenantAffinity>(); }})});
  gw.start();

  asio::io_context signals;  // the gateway runs its own workers; main only waits for a signal
  asio::signal_set stop{signals, SIGINT, SIGTERM};
  stop.async_wait([&](auto, auto) { gw.stop(); });
  signals.run();
  gw.wait();
}
// try: for p in 9001 9002 9003; do python3 -m http.server $p --bind 127.0.0.1 & done
// try: ./build/examples/tenant_affinity/tenant_affinity
// try: curl -s -o /dev/null -w '%{http_code}\n' -H 'X-Tenant: acme' http://127.0.0.1:8080/   (the access log
//      shows the same "upstream" for every acme request)
