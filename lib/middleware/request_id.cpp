#include "gatehouse/middleware/request_id.hpp"

#include <stdexcept>
#include <string_view>
#include <utility>

#include "util/fast_random.hpp"

namespace gatehouse {
namespace {

constexpr std::size_t kIdChars = 32;
constexpr std::size_t kMaxIncoming = 128;

// Writes 128 random bits as 32 lowercase hex characters. Ids only need to be unique, not secret,
// so the thread's fast generator is enough (no shared state: workers never contend).
void format_random_id(char (&out)[kIdChars]) {
  detail::FastRandom& gen = detail::FastRandom::local();
  detail::write_hex64(out, gen.next());
  detail::write_hex64(out + 16, gen.next());
}

bool valid_incoming(std::string_view id) noexcept {
  if (id.empty() || id.size() > kMaxIncoming) return false;
  for (char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

RequestId::RequestId(std::string header) : header_(std::move(header)) {
  if (header_.empty()) throw std::invalid_argument("RequestId: header name must not be empty");
}

Flow RequestId::on_request(Exchange& ex) const {
  Headers& headers = ex.request().headers();
  const auto incoming = headers.get(header_);
  // Only a trusted proxy may choose the id: a client could otherwise forge or collide ids in logs.
  if (ex.peer_trusted() && incoming && valid_incoming(*incoming)) {
    ex.set_request_id(*incoming);
  } else {
    char buf[kIdChars];
    format_random_id(buf);
    ex.set_request_id(std::string_view(buf, kIdChars));
  }
  headers.set(header_, ex.request_id());
  return Flow::next();
}

Flow RequestId::on_response(Exchange& ex) const {
  ex.response().headers().set(header_, ex.request_id());
  return Flow::next();
}

std::string RequestId::generate() {
  char buf[kIdChars];
  format_random_id(buf);
  return std::string(buf, kIdChars);
}

}  // namespace gatehouse
