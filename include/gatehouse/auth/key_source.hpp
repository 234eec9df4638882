// KeySource: where an issuer's verification keys come from (inline, file, PEM; later remote JWKS).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <asio/awaitable.hpp>

#include "gatehouse/auth/jwk.hpp"

namespace gatehouse::auth {

/// Shared by all worker threads: every member may be called concurrently.
///
/// A remote implementation is expected to keep its last good set when a fetch fails, to share one
/// fetch among all callers waiting for it (single flight), and to cap how often an unknown kid can
/// trigger a fetch, so that tokens with made-up kids cannot turn into a flood of requests.
class KeySource {
 public:
  virtual ~KeySource() = default;

  /// The keys usable right now without I/O, or nullptr when none were ever obtained.
  virtual std::shared_ptr<const JwkSet> current() const = 0;

  /// current()->generation(), or 0 without keys. Read on every cache hit, so overrides should be a
  /// plain (atomic) load rather than a shared_ptr copy.
  virtual std::uint64_t generation() const noexcept;

  /// False when refresh_for_unknown_kid() can never bring new keys (static keys): the verifier then
  /// answers unknown_key at once instead of going asynchronous.
  virtual bool can_refresh() const noexcept { return true; }

  /// Called when a token names a kid that current() lacks (`kid` is empty when the token has none
  /// and no key fits, or when current() is nullptr). Returns the newest set, possibly unchanged, or
  /// nullptr when no keys can be had. An exception counts as nullptr.
  virtual asio::awaitable<std::shared_ptr<const JwkSet>> refresh_for_unknown_kid(std::string kid) const = 0;
};

/// Keys fixed at construction.
class StaticKeySource final : public KeySource {
 public:
  /// Throws std::invalid_argument when `keys` is empty.
  explicit StaticKeySource(JwkSet keys);

  /// A JWKS document ({"keys":[...]}) given inline.
  static std::shared_ptr<StaticKeySource> from_jwks(std::string_view json);
  /// A PEM public key or certificate; `alg` pins the algorithm, `kid` names the key.
  static std::shared_ptr<StaticKeySource> from_pem(std::string_view pem, std::string_view alg = {},
                                                   std::string_view kid = {});
  /// A file holding a JWKS document or, when it contains "-----BEGIN", a PEM key or certificate.
  static std::shared_ptr<StaticKeySource> from_file(const std::filesystem::path& path,
                                                    std::string_view alg = {},
                                                    std::string_view kid = {});

  std::shared_ptr<const JwkSet> current() const override { return keys_; }
  std::uint64_t generation() const noexcept override { return keys_->generation(); }
  bool can_refresh() const noexcept override { return false; }
  asio::awaitable<std::shared_ptr<const JwkSet>> refresh_for_unknown_kid(std::string kid) const override;

 private:
  std::shared_ptr<const JwkSet> keys_;
};

}  // namespace gatehouse::auth
