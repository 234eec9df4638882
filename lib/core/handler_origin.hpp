// The local-handler origin: the gateway answers itself (health checks, static answers, a JWKS).
#pragma once
#include "core/origin_call.hpp"
#include "gatehouse/origin.hpp"

namespace gatehouse::detail {

class HandlerOrigin final : public OriginCall {
 public:
  explicit HandlerOrigin(Handler handler) : handler_(std::move(handler)) {}
  /// The handler's Flow is settled like a hook's; Flow::next() means 404, an exception 500.
  asio::awaitable<OriginResult> serve(ServeContext& ctx) const override;

 private:
  Handler handler_;
};

}  // namespace gatehouse::detail
