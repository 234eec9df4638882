#include "auth/jwk_thumbprint.hpp"

#include <array>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <openssl/evp.h>

#include "auth/base64url.hpp"

namespace gatehouse::auth {

std::string jwk_thumbprint(const nlohmann::json& jwk) {
  if (!jwk.is_object()) throw std::invalid_argument("JWK thumbprint: the key is not a JSON object");
  const auto kty = jwk.find("kty");
  if (kty == jwk.end() || !kty->is_string()) throw std::invalid_argument("JWK thumbprint: no \"kty\"");
  const std::string& type = kty->get_ref<const std::string&>();
  std::vector<std::string_view> members;
  if (type == "RSA") {
    members = {"e", "kty", "n"};
  } else if (type == "EC") {
    members = {"crv", "kty", "x", "y"};
  } else if (type == "OKP") {
    members = {"crv", "kty", "x"};
  } else if (type == "oct") {
    members = {"k", "kty"};
  } else {
    throw std::invalid_argument("JWK thumbprint: unknown kty");
  }
  // nlohmann's objects keep keys sorted and dump() writes no whitespace: the canonical form, since
  // every member value here is a plain string.
  nlohmann::json canonical = nlohmann::json::object();
  for (std::string_view m : members) {
    const auto it = jwk.find(m);
    if (it == jwk.end() || !it->is_string()) {
      throw std::invalid_argument("JWK thumbprint: missing member \"" + std::string(m) + "\"");
    }
    canonical[std::string(m)] = *it;
  }
  const std::string text = canonical.dump();
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1 || size != 32) {
    throw std::runtime_error("JWK thumbprint: SHA-256 failed");
  }
  return base64url_encode(digest.data(), size);
}

}  // namespace gatehouse::auth
