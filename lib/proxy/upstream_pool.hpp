// A worker's share of one upstream: its idle keep-alive connections, its load balancer and its
// cached view of the endpoint snapshot. Used from the worker's thread only: no locks.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gatehouse/load_balancer.hpp"
#include "gatehouse/upstream.hpp"
#include "http1/parser.hpp"
#include "net/stream.hpp"
#include "proxy/connection_slots.hpp"
#include "proxy/endpoint_chooser.hpp"
#include "util/deadline_clock.hpp"

namespace gatehouse::detail {

struct UpstreamMetrics;

/// A connection to an upstream endpoint, kept alive between requests.
struct UpstreamConnection {
  UpstreamConnection(Stream s, const UpstreamEndpoint& ep)
      : stream(std::move(s)), endpoint(ep.address), label(ep.label), created(deadline_now()) {}
  Stream stream;
  Http1Parser parser{Http1Parser::Kind::response};
  tcp::endpoint endpoint;
  std::string label;
  std::string head;  // the request head being sent (capacity kept across requests)
  std::chrono::steady_clock::time_point created;
  std::chrono::steady_clock::time_point idle_since{};
  bool reused = false;
  ConnectionSlot slot;  // its unit of the upstream's max_connections
};

class UpstreamPool {
 public:
  explicit UpstreamPool(const Upstream& upstream);
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  /// The current endpoints; reloaded from the upstream only when its generation changed, so a
  /// request costs one atomic load here.
  const std::shared_ptr<const std::vector<UpstreamEndpoint>>& snapshot();
  LoadBalancer& balancer() noexcept { return chooser_.balancer(); }
  /// The usable endpoints and the policy that picks among them (proxy/endpoint_chooser.hpp).
  EndpointChooser& chooser() noexcept { return chooser_; }

  /// An idle connection to `endpoint` still fit for a request, or null. Connections past their
  /// age or idle time, or with unexpected bytes or EOF waiting, are closed.
  std::unique_ptr<UpstreamConnection> take(const tcp::endpoint& endpoint);
  void put(std::unique_ptr<UpstreamConnection> c);
  /// Closes the least recently used idle connection, if any (its slot goes to a waiting request).
  bool shed_one_idle() noexcept;
  /// This worker's requests waiting for a connection slot of the upstream.
  ConnectionWaiters& waiters() noexcept { return waiters_; }
  void clear() noexcept {
    idle_.clear();
    publish_idle();
  }
  std::size_t idle_count() const noexcept { return idle_.size(); }
  /// idle_count() as other threads may read it (the metrics scrape).
  const std::atomic<std::size_t>& idle_published() const noexcept { return idle_published_; }
  /// This upstream's series in the gateway's metrics; null when metrics are off.
  const UpstreamMetrics* metrics() const noexcept { return metrics_; }
  void set_metrics(const UpstreamMetrics* m) noexcept { metrics_ = m; }

 private:
  const Upstream& upstream_;
  EndpointChooser chooser_;
  std::shared_ptr<const std::vector<UpstreamEndpoint>> snapshot_;
  std::uint64_t generation_ = 0;
  ConnectionWaiters waiters_;  // before idle_: closing idle connections wakes waiters
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;  // most recently used last
  std::atomic<std::size_t> idle_published_{0};
  const UpstreamMetrics* metrics_ = nullptr;
  void publish_idle() noexcept { idle_published_.store(idle_.size(), std::memory_order_relaxed); }
};

}  // namespace gatehouse::detail
