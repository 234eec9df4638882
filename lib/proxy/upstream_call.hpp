// The proxy origin: one call to an upstream for one request. Picks the endpoint (load-balancing
// policy), takes a pooled connection or connects (TLS included), sends the request head and body,
// reads the response head (1xx skipped), hands the response to the pipeline and streams its body,
// then returns the connection to the pool when the exchange was clean. Failed attempts (and
// responses whose status the policy retries) go to the retry policy; the upstream's circuit
// breakers bound requests, pending requests, connections and retries.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "core/origin_call.hpp"
#include "gatehouse/upstream.hpp"

namespace gatehouse::detail {

class UpstreamOrigin final : public OriginCall {
 public:
  /// `route_path` and `rewrite_prefix`: the route's prefix rewrite (none when unset).
  /// `retry_policy`: the route's own, or null for the upstream's.
  UpstreamOrigin(std::shared_ptr<Upstream> upstream, std::string route_path, std::optional<std::string> rewrite_prefix,
                 std::shared_ptr<const RetryPolicy> retry_policy = nullptr);
  asio::awaitable<OriginResult> serve(ServeContext& ctx) const override;
  const Upstream& upstream() const noexcept { return *upstream_; }

 private:
  std::shared_ptr<Upstream> upstream_;
  std::string route_path_;
  std::optional<std::string> rewrite_prefix_;
  std::shared_ptr<const RetryPolicy> retry_;
  RetrySettings retry_settings_;  // read once: the policy is immutable
};

}  // namespace gatehouse::detail
