#include "gatehouse/flow.hpp"

namespace gatehouse {

Flow::Flow(Flow&&) noexcept = default;
Flow& Flow::operator=(Flow&&) noexcept = default;
Flow::~Flow() = default;

Flow Flow::respond(Response r) {
  Flow f;
  f.kind_ = Kind::respond;
  f.response_ = std::make_unique<Response>(std::move(r));
  return f;
}

Flow Flow::respond(Status s, std::string_view message) {
  Flow f;
  f.kind_ = Kind::respond;
  f.error_body_ = true;
  f.response_ = std::make_unique<Response>();
  f.response_->set_status(s);
  // The JSON body is finished by the gateway, which knows the request id; keep the message here.
  if (!message.empty()) f.response_->set_body(std::string(message), "text/plain");
  return f;
}

Flow Flow::later(asio::awaitable<Flow> work) {
  Flow f;
  f.kind_ = Kind::later;
  f.work_ = std::make_unique<asio::awaitable<Flow>>(std::move(work));
  return f;
}

asio::awaitable<Flow> Flow::take_work() {
  auto w = std::move(*work_);
  work_.reset();
  kind_ = Kind::next;
  return w;
}

}  // namespace gatehouse
