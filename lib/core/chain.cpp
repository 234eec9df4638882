#include "core/chain.hpp"

#include <exception>

namespace gatehouse::detail {
namespace {

Flow internal_error() { return Flow::respond(Status::internal_server_error); }

}  // namespace

Flow step_on_request(ChainView chain, Exchange& ex, std::size_t& pos) noexcept {
  try {
    while (pos < chain.size()) {
      Flow f = chain[pos++]->on_request(ex);
      if (!f.is_next()) return f;
    }
    return Flow::next();
  } catch (...) {
    return internal_error();
  }
}

Flow step_on_response(ChainView chain, Exchange& ex, std::size_t& pos) noexcept {
  bool replaced = false;
  return step_on_response(chain, ex, pos, replaced);
}

Flow step_on_response(ChainView chain, Exchange& ex, std::size_t& pos, bool& replaced) noexcept {
  try {
    while (pos > 0) {
      Flow f = chain[--pos]->on_response(ex);
      if (f.is_later()) return f;
      if (f.is_response()) {
        adopt_response(f, ex);
        replaced = true;
      }
    }
    return Flow::next();
  } catch (...) {
    Flow f = internal_error();
    adopt_response(f, ex);
    replaced = true;
    return Flow::next();
  }
}

asio::awaitable<Flow> settle(Flow flow) {
  try {
    co_return co_await flow.take_work();
  } catch (...) {
    co_return internal_error();
  }
}

Flow run_on_request_body(ChainView chain, std::size_t entered, Exchange& ex, BodyChunk& chunk) noexcept {
  try {
    for (std::size_t i = 0; i < entered && i < chain.size(); ++i) {
      Flow f = chain[i]->on_request_body(ex, chunk);
      // Body hooks are synchronous: an async decision per chunk would stall streaming.
      if (f.is_later()) return internal_error();
      if (f.is_response()) return f;
    }
    return Flow::next();
  } catch (...) {
    return internal_error();
  }
}

bool run_on_response_body(ChainView chain, std::size_t entered, Exchange& ex, BodyChunk& chunk) noexcept {
  try {
    for (std::size_t i = std::min(entered, chain.size()); i-- > 0;) chain[i]->on_response_body(ex, chunk);
    return true;
  } catch (...) {
    return false;
  }
}

void run_on_complete(ChainView chain, std::size_t entered, Exchange& ex, std::error_code ec) noexcept {
  for (std::size_t i = std::min(entered, chain.size()); i-- > 0;) chain[i]->on_complete(ex, ec);
}

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      // Validate one UTF-8 sequence; anything invalid becomes U+FFFD so logs stay valid JSON.
      std::size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
      bool ok = len != 0 && i + len <= s.size() && c < 0xf5;
      for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
      if (ok && len == 3) {
        const auto c1 = static_cast<unsigned char>(s[i + 1]);
        ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
      } else if (ok && len == 4) {
        const auto c1 = static_cast<unsigned char>(s[i + 1]);
        ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
      }
      if (ok) {
        out.append(s.substr(i, len));
        i += len - 1;
      } else {
        out += "\\ufffd";
      }
    }
  }
}

void set_error_response(Exchange& ex, unsigned status, std::string_view message) {
  std::string body = "{\"error\":\"";
  append_json_escaped(body, message.empty() ? reason_phrase(status) : message);
  body += "\",\"status\":";
  body += std::to_string(status);
  body += ",\"request_id\":\"";
  append_json_escaped(body, ex.request_id());
  body += "\"}\n";
  Response r;
  r.set_status(status);
  r.set_body(std::move(body), "application/json");
  r.headers().set("cache-control", "no-store");
  ex.response() = std::move(r);
}

void adopt_response(Flow& flow, Exchange& ex) {
  if (!flow.is_response()) return;
  Response& r = flow.response();
  if (flow.wants_error_body()) {
    // Keep headers the middleware added (WWW-Authenticate, Retry-After), replace the body.
    Headers extra = std::move(r.headers());
    set_error_response(ex, r.status(), r.body());
    for (auto f : extra)
      if (!iequals(f.name, "content-type")) ex.response().headers().add(f.name, f.value);
    return;
  }
  ex.response() = std::move(r);
}

}  // namespace gatehouse::detail
