// The OpenSSL side of a JsonWebKey; only lib/auth sees it.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <openssl/evp.h>

#include "gatehouse/auth/jwk.hpp"
#include "util/openssl_ptr.hpp"

namespace gatehouse::auth {

using detail::PkeyPtr;


struct JsonWebKey::Impl {
  KeyType type = KeyType::oct;
  std::string kid;
  std::string alg;
  std::string use;                                    // "" when absent
  std::optional<std::vector<std::string>> key_ops;    // absent vs. present-but-empty matters
  std::string curve;                                  // "P-256", ..., "Ed25519"
  std::size_t bits = 0;
  PkeyPtr pkey;                                       // RSA, EC, OKP
  std::string secret;                                 // oct; wiped on destruction

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl();
};

}  // namespace gatehouse::auth
