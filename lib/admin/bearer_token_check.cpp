#include "admin/bearer_token_check.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <stdexcept>

#include "util/text.hpp"

namespace gatehouse::detail {
namespace {

constexpr std::size_t kMinTokenBytes = 16;
constexpr std::size_t kMaxTokenBytes = 4096;

bool sha256(std::string_view data, std::array<unsigned char, 32>& out) noexcept {
  unsigned int size = 0;
  return EVP_Digest(data.data(), data.size(), out.data(), &size, EVP_sha256(), nullptr) == 1 && size == out.size();
}

Flow refuse(std::string_view error) {
  Flow f = Flow::respond(Status::unauthorized, "admin API: a valid bearer token is required");
  std::string challenge = "Bearer realm=\"gatehouse-admin\"";
  if (!error.empty()) challenge += ", error=\"" + std::string(error) + "\"";
  f.response().headers().set("www-authenticate", challenge);
  return f;
}

}  // namespace

const char* admin_token_problem(std::string_view token) noexcept {
  if (token.size() < kMinTokenBytes) return "the admin token is shorter than 16 characters";
  if (token.size() > kMaxTokenBytes) return "the admin token is longer than 4096 characters";
  if (!std::all_of(token.begin(), token.end(), is_visible_ascii))
    return "the admin token must be visible ASCII characters only (no spaces or control characters)";
  return nullptr;
}

BearerTokenCheck::BearerTokenCheck(std::string_view token) {
  if (const char* problem = admin_token_problem(token)) throw std::invalid_argument(problem);
  if (!sha256(token, digest_)) throw std::runtime_error("admin token: SHA-256 is not available");
}

Flow BearerTokenCheck::on_request(Exchange& ex) const {
  const Headers& h = ex.request().headers();
  if (h.count("authorization") != 1) return refuse({});
  const std::string_view value = trim_ows(*h.get("authorization"));
  constexpr std::string_view scheme = "bearer ";
  if (value.size() <= scheme.size() || !iequals(value.substr(0, scheme.size()), scheme))
    return refuse({});
  const std::string_view presented = trim_ows(value.substr(scheme.size()));
  std::array<unsigned char, 32> digest{};
  if (presented.size() > kMaxTokenBytes || !sha256(presented, digest) ||
      CRYPTO_memcmp(digest.data(), digest_.data(), digest.size()) != 0)
    return refuse("invalid_token");
  return Flow::next();
}

}  // namespace gatehouse::detail
