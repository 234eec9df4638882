#include "gatehouse/middleware/request_id.hpp"

#include <cstdint>
#include <random>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace gatehouse {
namespace {

constexpr std::size_t kIdChars = 32;
constexpr std::size_t kMaxIncoming = 128;

// xoshiro256** (Blackman and Vigna): a few cycles per number and no shared state, so workers never
// contend. Ids only need to be unique, not secret, so a seeded PRNG is enough.
class IdGenerator {
 public:
  IdGenerator() {
    std::random_device rd;
    for (auto& word : s_) word = (std::uint64_t{rd()} << 32) | rd();
    if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 0x9e3779b97f4a7c15ULL;  // all-zero never moves
  }
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

// Writes 128 random bits as 32 lowercase hex characters.
void format_random_id(char (&out)[kIdChars]) {
  static constexpr char hex[] = "0123456789abcdef";
  thread_local IdGenerator gen;  // seeded once per thread
  for (std::size_t half = 0; half < 2; ++half) {
    std::uint64_t v = gen.next();
    for (std::size_t i = 0; i < 16; ++i, v >>= 4) out[half * 16 + 15 - i] = hex[v & 0xf];
  }
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
