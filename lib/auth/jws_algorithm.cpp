#include "gatehouse/auth/jws_algorithm.hpp"

#include <array>
#include <utility>

namespace gatehouse::auth {
namespace {

constexpr std::array<std::pair<std::string_view, JwsAlgorithm>, 13> kNames{{
    {"HS256", JwsAlgorithm::hs256}, {"HS384", JwsAlgorithm::hs384}, {"HS512", JwsAlgorithm::hs512},
    {"RS256", JwsAlgorithm::rs256}, {"RS384", JwsAlgorithm::rs384}, {"RS512", JwsAlgorithm::rs512},
    {"PS256", JwsAlgorithm::ps256}, {"PS384", JwsAlgorithm::ps384}, {"PS512", JwsAlgorithm::ps512},
    {"ES256", JwsAlgorithm::es256}, {"ES384", JwsAlgorithm::es384}, {"ES512", JwsAlgorithm::es512},
    {"EdDSA", JwsAlgorithm::eddsa},
}};

}  // namespace

std::optional<JwsAlgorithm> parse_jws_algorithm(std::string_view name) noexcept {
  for (const auto& [n, alg] : kNames) {
    if (n == name) return alg;
  }
  return std::nullopt;
}

std::string_view to_string(JwsAlgorithm alg) noexcept {
  for (const auto& [n, a] : kNames) {
    if (a == alg) return n;
  }
  return "?";
}

}  // namespace gatehouse::auth
