// Load balancing: which endpoint of an upstream serves each attempt of a request.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include <asio/ip/tcp.hpp>

#include "gatehouse/exchange.hpp"

namespace gatehouse {

/// One resolved address of an upstream.
struct UpstreamEndpoint {
  asio::ip::tcp::endpoint address{};
  std::string label{};  ///< "host:port" as configured, for logs
  std::string host{};   ///< configured host, for SNI and the Host check
  unsigned weight = 1;  ///< as configured (UpstreamOptions::weights), 1..10000
};

/// What a policy knows when it picks the endpoint for one attempt.
struct PickRequest {
  const Exchange& exchange;  ///< the request: headers, client address, Exchange slots
  /// The endpoints to choose from, never empty: those that are usable (healthy and not ejected),
  /// or all of them when too few are (the panic threshold, UpstreamHealthOptions). So every
  /// policy, an application's own included, skips unhealthy endpoints without knowing about them.
  std::span<const UpstreamEndpoint> endpoints;
  unsigned attempt = 0;  ///< 0 for the first try, 1, 2, ... for retries
  /// Indexes into `endpoints` this request already tried (and failed on), oldest first.
  std::span<const std::size_t> tried{};
  /// Weights in force, parallel to `endpoints`, in hundredths: the configured weight × 100, lower
  /// while an endpoint ramps up after coming back (slow start). Empty: use weight(i).
  std::span<const std::uint32_t> weights{};
  /// Changes whenever `endpoints` changes (an endpoint leaves or returns, DNS, a reload): a policy
  /// that keeps state per endpoint index rebuilds it then.
  std::uint64_t generation = 0;

  /// The weight in force of endpoints[i], in hundredths.
  std::uint64_t weight(std::size_t i) const noexcept {
    return weights.empty() ? std::uint64_t{endpoints[i].weight} * 100 : weights[i];
  }
  bool was_tried(std::size_t i) const noexcept {
    for (std::size_t t : tried)
      if (t == i) return true;
    return false;
  }
};

/// Chooses an endpoint for each attempt. The gateway makes one instance per worker thread and
/// upstream (through a LoadBalancerFactory) and calls it from that thread only, so an
/// implementation keeps plain, unsynchronized state. Example, always the first endpoint not tried:
///
///   struct FirstUp final : gh::LoadBalancer {
///     std::size_t pick(const gh::PickRequest& r) override { return r.tried.size() % r.endpoints.size(); }
///   };
///   options.load_balancer = [] { return std::make_unique<FirstUp>(); };
class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  /// An index into r.endpoints. An index out of range means "no endpoint": the request gets 503.
  virtual std::size_t pick(const PickRequest& r) = 0;
  /// An attempt on `endpoint` (an element of the last PickRequest::endpoints) began / ended
  /// (`ok`: a response head arrived), for policies that weigh endpoints by their load. Defaults do
  /// nothing.
  virtual void on_attempt_start(const UpstreamEndpoint& endpoint);
  virtual void on_attempt_end(const UpstreamEndpoint& endpoint, bool ok);
};

/// Makes one LoadBalancer for one worker thread.
using LoadBalancerFactory = std::function<std::unique_ptr<LoadBalancer>()>;

/// Smooth weighted round robin (nginx's algorithm: each pick adds every endpoint's weight to its
/// running score and takes the highest, which then loses the total), skipping endpoints this
/// request already tried. Weights 5:1:1 give a a b a c a a, not a a a a a b c; equal weights give
/// plain round robin. The default policy.
LoadBalancerFactory round_robin();

}  // namespace gatehouse
