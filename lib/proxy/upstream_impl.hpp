// Upstream internals shared by the gateway's workers.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <asio/ssl/context.hpp>

#include "gatehouse/upstream.hpp"
#include "proxy/circuit_breaker.hpp"
#include "proxy/upstream_health.hpp"

namespace gatehouse {
namespace detail {
class HealthChecker;
}

struct Upstream::Impl {
  struct Target {
    std::string host;  // as configured, without brackets
    std::uint16_t port = 0;
    std::string label;  // "host:port" as configured
    bool numeric = false;
    unsigned weight = 1;  // UpstreamOptions::weights
  };
  struct Resolving;

  UpstreamOptions options;
  std::vector<Target> targets;
  std::atomic<std::shared_ptr<const std::vector<Endpoint>>> snapshot;
  std::atomic<std::uint64_t> generation{1};
  std::shared_ptr<asio::ssl::context> tls_context;  // set when options.tls
  std::shared_ptr<const RetryPolicy> retry_policy;  // options.retry_policy or the default
  std::unique_ptr<detail::CircuitBreaker> breaker;  // shared by all workers
  std::shared_ptr<Resolving> resolving;
  std::shared_ptr<detail::UpstreamHealth> health;  // every resolved endpoint's health, shared by the workers
  std::shared_ptr<detail::HealthChecker> checker;  // active checks and ejection returns, while started
};

namespace detail {
/// The library's way into an Upstream's internals.
struct UpstreamAccess {
  using Impl = Upstream::Impl;
  static Impl& impl(Upstream& u) noexcept { return *u.impl_; }
  static const Impl& impl(const Upstream& u) noexcept { return *u.impl_; }
};
using UpstreamImpl = UpstreamAccess::Impl;

/// Splits "host:port" or "[v6]:port"; throws std::invalid_argument with the reason.
UpstreamImpl::Target parse_endpoint(const std::string& text);
}  // namespace detail

}  // namespace gatehouse
