#include "gatehouse/middleware.hpp"

namespace gatehouse {

Flow Middleware::on_request(Exchange&) const { return Flow::next(); }
Flow Middleware::on_request_body(Exchange&, BodyChunk&) const { return Flow::next(); }
Flow Middleware::on_response(Exchange&) const { return Flow::next(); }
void Middleware::on_response_body(Exchange&, BodyChunk&) const {}
void Middleware::on_complete(Exchange&, std::error_code) const noexcept {}

}  // namespace gatehouse
