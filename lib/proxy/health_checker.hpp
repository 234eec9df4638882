// Active health checks of one upstream, run once per upstream on one executor (the gateway's
// first worker): every interval (with jitter) each endpoint gets an HTTP GET or a TCP connect,
// over TLS when the upstream uses TLS, and UpstreamHealth turns the results into the healthy /
// unhealthy state every worker reads. The same loop returns ejected endpoints whose time is up,
// so that an idle upstream's state is right too.
#pragma once
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ssl/context.hpp>
#include <asio/steady_timer.hpp>

#include "proxy/upstream_health.hpp"

namespace gatehouse::detail {

/// What one probe found: passed, or why not (for logs and tests).
struct ProbeResult {
  bool passed = false;
  unsigned status = 0;  // HTTP checks: the status received (0: none)
  std::string error{};
};

class Stream;
/// The probes in flight, so that stop() can end them at once.
struct ProbeRegistry {
  std::vector<std::shared_ptr<Stream>> live;
};

/// One check of `endpoint` as `options` describe it. `tls`: the upstream's client context, or
/// null; `tls_server_name`: the name to verify instead of the endpoint's host (may be empty).
/// Parameters by value: a coroutine started later (co_spawn) must not hold its caller's temporaries.
asio::awaitable<ProbeResult> probe_endpoint(asio::any_io_executor ex, UpstreamEndpoint endpoint,
                                            HealthCheckOptions options, asio::ssl::context* tls,
                                            std::string tls_server_name, ProbeRegistry* registry = nullptr);

class HealthChecker : public std::enable_shared_from_this<HealthChecker> {
 public:
  HealthChecker(asio::any_io_executor ex, std::shared_ptr<UpstreamHealth> health,
                std::shared_ptr<asio::ssl::context> tls, std::string tls_server_name);
  /// Starts the loop (holds the checker alive until stop()).
  void start();
  /// Ends the loop and the probes in flight; from any thread (posts to the executor).
  void stop();

 private:
  asio::awaitable<void> loop();
  asio::awaitable<void> check(std::shared_ptr<EndpointHealth> e);
  std::chrono::steady_clock::duration next_interval();

  asio::any_io_executor ex_;
  std::shared_ptr<UpstreamHealth> health_;
  std::shared_ptr<asio::ssl::context> tls_;
  std::string tls_server_name_;
  asio::steady_timer timer_;
  ProbeRegistry probes_;
  std::mt19937_64 rng_;
  bool stopped_ = false;
};

}  // namespace gatehouse::detail
