#include "gatehouse/middleware/header_rewrite.hpp"
#include "http1/token.hpp"
#include "util/text.hpp"

#include <stdexcept>
#include <string_view>

namespace gatehouse {
namespace {

using detail::is_field_value;
using detail::is_http_token;

void check(const HeaderEdits& edits, const char* which) {
  auto fail = [which](std::string_view what, std::string_view text) {
    throw std::invalid_argument(std::string("HeaderRewrite: invalid ") + which + " header " + std::string(what) +
                                " \"" + std::string(text) + "\"");
  };
  for (const auto& name : edits.remove)
    if (!is_http_token(name)) fail("name", name);
  for (const auto* list : {&edits.set, &edits.append}) {
    for (const auto& [name, value] : *list) {
      if (!is_http_token(name)) fail("name", name);
      if (!is_field_value(value)) fail("value for", name);
    }
  }
}

void apply(Headers& headers, const HeaderEdits& edits) {
  for (const auto& name : edits.remove) headers.remove(name);
  for (const auto& [name, value] : edits.set) headers.set(name, value);
  for (const auto& [name, value] : edits.append) headers.add(name, value);
}

}  // namespace

HeaderRewrite::HeaderRewrite(HeaderRewriteOptions options) : options_(std::move(options)) {
  check(options_.request, "request");
  check(options_.response, "response");
}

Flow HeaderRewrite::on_request(Exchange& ex) const {
  apply(ex.request().headers(), options_.request);
  return Flow::next();
}

Flow HeaderRewrite::on_response(Exchange& ex) const {
  apply(ex.response().headers(), options_.response);
  return Flow::next();
}

}  // namespace gatehouse
