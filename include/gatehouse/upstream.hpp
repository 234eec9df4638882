// Upstream: a named set of service endpoints the gateway forwards to.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/ip/tcp.hpp>

#include "gatehouse/circuit_breaker.hpp"
#include "gatehouse/load_balancer.hpp"
#include "gatehouse/retry_policy.hpp"
#include "gatehouse/tls_options.hpp"
#include "gatehouse/upstream_health.hpp"

namespace gatehouse {

namespace detail {
struct UpstreamAccess;
}

struct UpstreamOptions {
  std::string name{};
  /// "host:port" entries; host is an IPv4 address, [IPv6] or a DNS name (resolved asynchronously
  /// and re-resolved every resolve_interval).
  std::vector<std::string> endpoints{};
  /// Weights of endpoints, keyed as written in `endpoints` (1..10000; unlisted: 1). Every address
  /// a DNS name resolves to gets that name's weight.
  std::map<std::string, unsigned> weights{};
  std::chrono::milliseconds connect_timeout{2'000};
  /// Time allowed for one attempt, from sending the request until the response headers arrive.
  std::chrono::milliseconds try_timeout{30'000};
  /// Time allowed for the whole exchange with the upstream, across retries, until the response
  /// headers arrive.
  std::chrono::milliseconds total_timeout{60'000};
  /// Connection attempts on other endpoints when a connect fails (never after a request byte was
  /// sent). Used by the default retry policy.
  unsigned connect_retries = 1;
  std::size_t max_idle_per_worker = 64;
  std::chrono::milliseconds max_idle_time{30'000};
  std::chrono::milliseconds max_connection_age{300'000};
  std::chrono::milliseconds resolve_interval{30'000};
  std::optional<UpstreamTls> tls{};
  /// Picks the endpoint of each attempt; empty: round_robin().
  LoadBalancerFactory load_balancer{};
  /// Decides which failed attempts are tried again; null: ConnectRetryPolicy(connect_retries).
  /// A route may set its own (Route::retry_policy).
  std::shared_ptr<const RetryPolicy> retry_policy{};
  /// Limits on connections, pending requests, requests and retries, over all workers.
  CircuitBreakerLimits circuit_breaker{};
  /// Active health checks, outlier detection, panic threshold, slow start.
  UpstreamHealthOptions health{};
};

/// Shared by all workers. Endpoints are resolved to a snapshot that workers read without locks.
class Upstream : public std::enable_shared_from_this<Upstream> {
 public:
  /// Throws std::invalid_argument for an endpoint that does not parse, std::runtime_error when
  /// the TLS settings cannot be loaded.
  static std::shared_ptr<Upstream> create(UpstreamOptions options);
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  const UpstreamOptions& options() const noexcept;
  const std::string& name() const noexcept;

  using Endpoint = UpstreamEndpoint;
  /// Current resolved endpoints (empty while a DNS name is still unresolved).
  std::shared_ptr<const std::vector<Endpoint>> endpoints() const;
  /// Bumped on every change of endpoints(), so workers can cache the snapshot.
  std::uint64_t generation() const noexcept;

  /// Its circuit breakers now: what is held against each limit, and how often each refused.
  CircuitBreakerState circuit_breaker() const noexcept;
  /// Every resolved endpoint with its health, ejection and weight in force. Safe from any thread.
  std::vector<EndpointState> endpoint_states() const;

  /// Starts (or restarts) periodic DNS resolution on `ex`; numeric endpoints need none.
  void start_resolving(asio::any_io_executor ex);
  void stop_resolving();
  /// Starts the active health checks (when configured) and the return of ejected endpoints on
  /// `ex`: once per upstream, whatever the number of workers. The gateway calls these.
  void start_health_checks(asio::any_io_executor ex);
  void stop_health_checks();

 private:
  friend struct detail::UpstreamAccess;
  struct Impl;
  explicit Upstream(UpstreamOptions options);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gatehouse
