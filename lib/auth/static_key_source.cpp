#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "gatehouse/auth/key_source.hpp"

namespace gatehouse::auth {

std::uint64_t KeySource::generation() const noexcept {
  const auto keys = current();
  return keys ? keys->generation() : 0;
}

StaticKeySource::StaticKeySource(JwkSet keys) : keys_(std::make_shared<const JwkSet>(std::move(keys))) {
  if (keys_->empty()) {
    std::string msg = "static key source: no usable key";
    for (const auto& why : keys_->skipped()) msg += "; " + why;
    throw std::invalid_argument(msg);
  }
}

std::shared_ptr<StaticKeySource> StaticKeySource::from_jwks(std::string_view json) {
  return std::make_shared<StaticKeySource>(JwkSet::parse(json));
}

std::shared_ptr<StaticKeySource> StaticKeySource::from_pem(std::string_view pem, std::string_view alg,
                                                           std::string_view kid) {
  return std::make_shared<StaticKeySource>(JwkSet::from_pem(pem, alg, kid));
}

std::shared_ptr<StaticKeySource> StaticKeySource::from_file(const std::filesystem::path& path,
                                                            std::string_view alg, std::string_view kid) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument("static key source: cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  const std::string content = std::move(text).str();
  if (content.find("-----BEGIN") != std::string::npos) return from_pem(content, alg, kid);
  return from_jwks(content);
}

asio::awaitable<std::shared_ptr<const JwkSet>> StaticKeySource::refresh_for_unknown_kid(std::string kid) const {
  static_cast<void>(kid);
  co_return keys_;
}

}  // namespace gatehouse::auth
