#include "core/handler_origin.hpp"

#include "core/chain.hpp"

namespace gatehouse::detail {

asio::awaitable<OriginResult> HandlerOrigin::serve(ServeContext& ctx) const {
  Flow answer = Flow::next();
  try {
    answer = handler_(ctx.ex);
  } catch (...) {
    answer = Flow::respond(Status::internal_server_error);
  }
  while (answer.is_later()) answer = co_await settle(std::move(answer));
  if (!answer.is_response()) co_return OriginResult{OriginResult::Kind::failed, 404, {}, {}};
  adopt_response(answer, ctx.ex);
  const Delivery d = co_await ctx.responder.deliver(nullptr);
  co_return OriginResult{OriginResult::Kind::delivered, 0, {}, d.error};
}

}  // namespace gatehouse::detail
