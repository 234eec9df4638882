// The proxy origin: one call to an upstream for one request. Picks the endpoint (load-balancing
// policy), takes a pooled connection or connects (TLS included), sends the request head and body,
// reads the response head (1xx skipped), hands the response to the pipeline and streams its body,
// then returns the connection to the pool when the exchange was clean. Failed attempts go to the
// retry policy.
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
  UpstreamOrigin(std::shared_ptr<Upstream> upstream, std::string route_path, std::optional<std::string> rewrite_prefix);
  asio::awaitable<OriginResult> serve(ServeContext& ctx) const override;
  const Upstream& upstream() const noexcept { return *upstream_; }

 private:
  std::shared_ptr<Upstream> upstream_;
  std::string route_path_;
  std::optional<std::string> rewrite_prefix_;
};

}  // namespace gatehouse::detail
