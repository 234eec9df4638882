#include "gatehouse/middleware/response_hardening.hpp"

#include <stdexcept>
#include <string_view>
#include <utility>

#include "http1/token.hpp"
#include "util/text.hpp"

namespace gatehouse {
namespace {

void check_header(std::string_view name, std::string_view value) {
  if (!detail::is_http_token(name))
    throw std::invalid_argument("ResponseHardening: invalid header name \"" + detail::without_controls(name) + "\"");
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
    throw std::invalid_argument("ResponseHardening: the value of \"" + std::string(name) + "\" has CR, LF or NUL");
}

void put(Headers& h, std::string_view name, std::string_view value, bool override_upstream) {
  if (!override_upstream && h.contains(name)) return;
  h.set(name, value);
}

}  // namespace

ResponseHardening::ResponseHardening(ResponseHardeningOptions options) : options_(std::move(options)) {
  check_header("strict-transport-security", options_.strict_transport_security);
  auto add = [this](std::string name, const std::string& value) {
    check_header(name, value);
    if (!value.empty()) added_.emplace_back(detail::to_lower_ascii(name), value);
  };
  add("x-content-type-options", options_.content_type_options);
  add("x-frame-options", options_.frame_options);
  add("referrer-policy", options_.referrer_policy);
  for (const auto& [name, value] : options_.extra) {
    if (value.empty()) throw std::invalid_argument("ResponseHardening: empty value for \"" + name + "\"");
    add(name, value);
  }
  for (auto& name : options_.remove) {
    if (!detail::is_http_token(name))
      throw std::invalid_argument("ResponseHardening: invalid header name \"" + detail::without_controls(name) + "\"");
    name = detail::to_lower_ascii(name);
  }
}

void ResponseHardening::harden(Headers& h, bool secure) const {
  for (const auto& name : options_.remove) h.remove(name);
  for (const auto& [name, value] : added_) put(h, name, value, options_.override_upstream);
  if (secure && !options_.strict_transport_security.empty())
    put(h, "strict-transport-security", options_.strict_transport_security, options_.override_upstream);
}

Flow ResponseHardening::on_response(Exchange& ex) const {
  const unsigned status = ex.response().status();
  // Only what an upstream sent: the gateway's own errors carry nothing internal.
  if (options_.replace_upstream_5xx && status >= 500 && status <= 599 && !ex.upstream_endpoint().empty()) {
    Flow f = Flow::respond(static_cast<Status>(status));
    Headers& own = f.response().headers();
    // A 503's Retry-After is advice for the client, not an internal detail.
    if (const auto retry = ex.response().headers().get("retry-after")) own.set("retry-after", *retry);
    harden(own, ex.secure());
    return f;
  }
  harden(ex.response().headers(), ex.secure());
  return Flow::next();
}

}  // namespace gatehouse
