// Gateway: listeners, routes and the middleware chain, run on worker threads or a host executor.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/ip/tcp.hpp>

#include "gatehouse/admin.hpp"
#include "gatehouse/metrics.hpp"
#include "gatehouse/reload_result.hpp"
#include "gatehouse/middleware.hpp"
#include "gatehouse/route.hpp"
#include "gatehouse/path_policy.hpp"
#include "gatehouse/tls_options.hpp"
#include "gatehouse/trace_context.hpp"

namespace gatehouse {

class IpFilter;
class SecurityEvents;
class BanList;
class RedisClient;

struct ListenerOptions {
  std::string address = "127.0.0.1";  ///< IPv4 or IPv6 address ("::" for all IPv6)
  std::uint16_t port = 8080;          ///< 0 picks a free port (see Gateway::local_endpoints)
  std::optional<ServerTls> tls{};
  int backlog = 1024;
  /// Names the listener for Route::listeners (an admin listener kept apart from the public one,
  /// say). Listeners may share a name: a route bound to it is served on each of them.
  std::string name{};
  /// How request paths are made canonical on this listener (gatehouse/path_policy.hpp).
  PathPolicy path_policy{};
  /// Optional: a connection whose TCP peer the filter refuses is closed as soon as it is accepted,
  /// before TLS or any byte is read (and reported as an ip_filtered event). The filter's
  /// IpFilterOptions::address is ignored here: only the peer is known at that point.
  std::shared_ptr<const IpFilter> ip_filter{};
  /// This listener's W3C trace-context handling; unset: GatewayOptions::trace_context.
  std::optional<TraceContextOptions> trace_context{};
  /// Most connections open at once on this listener, all workers together; 0: no limit. Past it,
  /// a new connection is closed as soon as it is accepted (before TLS) and counted.
  std::size_t max_connections = 0;
  /// Most connections open at once from one client address (the TCP peer) on this listener; 0:
  /// no limit. Behind a proxy every client has the proxy's address: leave it 0 there.
  std::size_t max_connections_per_client = 0;
};

/// Protocol limits, each enforced while parsing with the status a client should see.
struct Limits {
  std::size_t max_uri_bytes = 8 * 1024;              ///< 414
  std::size_t max_header_bytes = 32 * 1024;          ///< 431 (request line not included)
  std::size_t max_header_count = 100;                ///< 431
  std::uint64_t max_body_bytes = 100ull << 20;       ///< 413; 0 means no limit
  std::chrono::milliseconds header_timeout{10'000};  ///< 408 if headers are not complete in time
  std::chrono::milliseconds idle_timeout{60'000};    ///< keep-alive idle time between requests
  /// Deadline for receiving the whole request (headers and body) from the client: 408.
  std::chrono::milliseconds request_timeout{60'000};
  /// Deadline for the client to take response bytes (a stalled reader is cut off).
  std::chrono::milliseconds send_timeout{60'000};
};

/// The gateway's Prometheus metrics (docs/observability.md lists them).
struct MetricsOptions {
  /// false: nothing is counted (the cost per request is one pointer test) and Gateway::metrics()
  /// is null.
  bool enabled = true;
  /// The registry the gateway declares its metrics in and counts into; null: one of its own. Give
  /// the application's registry to scrape its metrics and the gateway's together.
  std::shared_ptr<MetricsRegistry> registry{};
};

struct GatewayOptions {
  unsigned workers = 0;  ///< worker threads; 0: hardware concurrency
  Limits limits{};
  /// CIDR blocks ("10.0.0.0/8", "::1/128") whose X-Forwarded-* / Forwarded / X-Request-Id are kept.
  std::vector<std::string> trusted_proxies{};
  /// Graceful stop: in-flight requests may finish during this time, then connections are closed.
  std::chrono::milliseconds drain_timeout{10'000};
  /// Name of the request id header, generated when absent or untrusted and echoed in responses.
  std::string request_id_header = "x-request-id";
  /// Fixed at construction: a reload keeps the gateway's registry (Gateway::metrics()).
  MetricsOptions metrics{};
  /// Receives the security events of this gateway (refused credentials, denied requests, protocol
  /// violations, TLS handshake failures; gatehouse/security_events.hpp, docs/observability.md).
  /// Null: no events are built at all (one pointer test per decision); the library logger keeps
  /// its usual messages either way.
  std::shared_ptr<SecurityEvents> security_events{};
  /// W3C trace context (traceparent/tracestate) for every listener that has no setting of its own:
  /// continue the caller's trace or start one, and send the upstream a traceparent with the
  /// gateway's span (docs/observability.md, "Trace context").
  TraceContextOptions trace_context{};
  /// Automatic bans (gatehouse/bans.hpp): banned clients are refused at accept and per request
  /// (403). The gateway reports ban events to security_events; for scoring, security_events must
  /// have the list's sink() among its sinks (the configuration loader adds it). Null: no bans.
  std::shared_ptr<BanList> bans{};
  /// Redis connections the gateway reports in its metrics (gatehouse_redis_*, by name): the
  /// configuration loader lists those of the "redis" section. Reporting only; whatever uses a
  /// connection holds it itself.
  std::vector<std::pair<std::string, std::shared_ptr<RedisClient>>> redis{};
};

/// Everything listen(), use() and route() register, with the options: what Gateway::reload
/// replaces as a whole.
struct GatewayDefinition {
  /// `workers` is fixed by start(), `metrics` by the constructor; a reload keeps them.
  GatewayOptions options{};
  std::vector<ListenerOptions> listeners{};
  std::vector<std::shared_ptr<const Middleware>> middleware{};  ///< the global chain, as use()
  std::vector<Route> routes{};
};

class Gateway {
 public:
  /// A gateway that starts its own worker threads (one io_context and one SO_REUSEPORT socket
  /// per listener each).
  explicit Gateway(GatewayOptions options = {});
  /// A gateway that runs on the host application's executor (one worker, no threads of its own).
  explicit Gateway(asio::any_io_executor executor, GatewayOptions options = {});
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  Gateway& listen(ListenerOptions listener);
  /// Appends to the global chain (runs before every route's own middleware).
  Gateway& use(std::shared_ptr<const Middleware> middleware);
  template <class M, class... Args>
  Gateway& use(Args&&... args) {
    return use(std::make_shared<const M>(std::forward<Args>(args)...));
  }
  Gateway& route(Route route);
  /// Serves the admin API (probes, metrics, configuration, drain, reload) on a listener of its
  /// own, which public listeners never route to; it stays up while the gateway drains (readiness
  /// 503) and closes after. See docs/observability.md.
  Gateway& admin(AdminOptions options);

  /// Binds every listener (throws std::system_error if one cannot be bound) and starts serving.
  /// Throws std::invalid_argument for an invalid route (no target or two, a path without the
  /// leading '/', a listener name that no listener has).
  void start();
  /// Graceful stop: stop accepting, let in-flight requests finish up to drain_timeout, then close.
  /// Safe to call from any thread and from a signal handler's completion; returns at once.
  void stop();
  /// Blocks until the gateway stopped (own worker threads only).
  void wait();
  /// Replaces listeners, middleware, routes (with their upstreams) and options while the gateway
  /// runs, without dropping a request. Everything is built and checked first (routes, addresses,
  /// TLS certificate files, which are read again so that certificates rotate; new listeners are
  /// bound): a problem throws (std::invalid_argument, std::system_error, std::runtime_error) and
  /// leaves the running configuration untouched. Then every worker switches: requests in flight
  /// finish on the configuration they started with, new requests (and the next request of a
  /// keep-alive connection) see the new one. A listener with the same address, port and TLS mode
  /// keeps its sockets (its certificates may change); removed listeners stop accepting and their
  /// connections close after their current response. An Upstream object that is in both keeps its
  /// connection pools: pass the same shared_ptr to keep them. Returns once every worker switched
  /// (up to 5 s), so requests arriving afterwards see the new configuration; it does not wait for
  /// the worker it is called from, so a request handler may call it (that worker switches when
  /// the handler returns). Before start(), it replaces what start() will use. Thread-safe. Throws
  /// std::logic_error once the gateway is stopping.
  ReloadSummary reload(GatewayDefinition next);
  /// The definition in force (or, before start(), registered so far): a copy to change and reload.
  GatewayDefinition definition() const;
  /// Addresses actually bound, in listen() order (useful with port 0).
  std::vector<asio::ip::tcp::endpoint> local_endpoints() const;
  /// The admin listener's address once started, if admin() was called.
  std::optional<asio::ip::tcp::endpoint> admin_endpoint() const;
  const GatewayOptions& options() const noexcept;
  /// The registry holding the gateway's metrics (and any the application declares in it), ready
  /// before start(); render_prometheus() on it is a scrape. Null when metrics are disabled.
  const std::shared_ptr<MetricsRegistry>& metrics() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gatehouse
