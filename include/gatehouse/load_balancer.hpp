// Load balancing: which endpoint of an upstream serves each attempt of a request.
#pragma once
#include <cstddef>
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
};

/// What a policy knows when it picks the endpoint for one attempt.
struct PickRequest {
  const Exchange& exchange;                    ///< the request: headers, client address, Exchange slots
  std::span<const UpstreamEndpoint> endpoints;  ///< never empty
  unsigned attempt = 0;                         ///< 0 for the first try, 1, 2, ... for retries
  /// Indexes into `endpoints` this request already tried (and failed on), oldest first.
  std::span<const std::size_t> tried{};
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
  /// An attempt on `endpoint` began / ended (`ok`: a response head arrived), for policies that
  /// weigh endpoints by their load. Defaults do nothing.
  virtual void on_attempt_start(const UpstreamEndpoint& endpoint);
  virtual void on_attempt_end(const UpstreamEndpoint& endpoint, bool ok);
};

/// Makes one LoadBalancer for one worker thread.
using LoadBalancerFactory = std::function<std::unique_ptr<LoadBalancer>()>;

/// Round robin over the endpoints, skipping those this request already tried (the default).
LoadBalancerFactory round_robin();

}  // namespace gatehouse
