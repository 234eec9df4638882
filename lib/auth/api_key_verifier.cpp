#include "gatehouse/auth/api_key_verifier.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util/openssl_ptr.hpp"
#include "util/text.hpp"

namespace gatehouse::auth {

using detail::MdPtr;
using detail::has_control;
using detail::is_scope_token;
using detail::printable;
using detail::to_hex;
namespace {

using Digest = std::array<unsigned char, 32>;

constexpr std::size_t kMaxKeyBytesLimit = 65536;

bool parse_hex_digest(std::string_view hex, Digest& out) noexcept {
  if (hex.size() != 2 * out.size()) return false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = detail::hex_value(hex[2 * i]);
    const int lo = detail::hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

// Keys are visible ASCII: anything else cannot have been issued by us, and refusing it before
// hashing keeps header-splitting and encoding tricks out of the lookup.
constexpr auto is_key_char = detail::is_visible_ascii;

bool sha256(const EVP_MD* md, std::string_view data, Digest& out) noexcept {
  unsigned int len = 0;
  return EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) == 1 && len == out.size();
}

asio::awaitable<VerifyResult> ready(VerifyResult r) { co_return r; }

}  // namespace

struct ApiKeyVerifier::Impl {
  struct Entry {
    Digest digest{};
    Claims claims;
  };

  std::vector<Entry> entries;  // sorted by digest
  std::size_t max_key_bytes = 0;
  // Fetched once: the implicit fetch behind EVP_sha256() costs a lookup on every call.
  MdPtr md;

  explicit Impl(ApiKeyVerifierOptions o);
  VerifyResult check(std::string_view key) const;
};

ApiKeyVerifier::Impl::Impl(ApiKeyVerifierOptions o) : max_key_bytes(o.max_key_bytes) {
  auto invalid = [](const std::string& why) { throw std::invalid_argument("ApiKeyVerifier: " + why); };
  // Keys are named by index and id, never by digest: error messages end up in logs.
  auto name = [&o](std::size_t i) {
    std::string n = "key " + std::to_string(i);
    if (!o.keys[i].id.empty()) n += " (id " + printable(o.keys[i].id) + ")";
    return n;
  };
  if (o.keys.empty()) invalid("no keys configured");
  if (o.max_key_bytes == 0 || o.max_key_bytes > kMaxKeyBytesLimit) {
    invalid("max_key_bytes must be in 1.." + std::to_string(kMaxKeyBytesLimit));
  }
  md.reset(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  if (!md) throw std::runtime_error("ApiKeyVerifier: SHA-256 is not available from OpenSSL");

  entries.reserve(o.keys.size());
  for (std::size_t i = 0; i < o.keys.size(); ++i) {
    const ApiKey& k = o.keys[i];
    Entry e;
    if (!parse_hex_digest(k.sha256, e.digest)) invalid(name(i) + ": sha256 is not 64 hex digits");
    if (k.principal.empty()) invalid(name(i) + ": empty principal");
    if (has_control(k.principal)) invalid(name(i) + ": the principal contains control characters");
    if (has_control(k.id)) invalid(name(i) + ": the id contains control characters");
    std::string scope;
    for (const auto& s : k.scopes) {
      if (!is_scope_token(s)) invalid(name(i) + ": invalid scope " + printable(s));
      if (!scope.empty()) scope += ' ';
      scope += s;
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (!k.id.empty() && o.keys[j].id == k.id) invalid(name(i) + ": the id is also used by key " + std::to_string(j));
    }
    nlohmann::json claims = {{"sub", k.principal}};
    if (!scope.empty()) claims["scope"] = std::move(scope);
    if (!k.id.empty()) claims["gatehouse_api_key_id"] = k.id;
    e.claims = Claims(std::move(claims));
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.digest < b.digest; });
  for (std::size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].digest == entries[i - 1].digest) {
      // Find the original indexes for the message; this is construction, not the request path.
      std::vector<std::size_t> same;
      for (std::size_t j = 0; j < o.keys.size(); ++j) {
        Digest d{};
        if (parse_hex_digest(o.keys[j].sha256, d) && d == entries[i].digest) same.push_back(j);
      }
      invalid(name(same.at(1)) + ": same sha256 as key " + std::to_string(same.at(0)));
    }
  }
}

VerifyResult ApiKeyVerifier::Impl::check(std::string_view key) const {
  if (key.empty()) return VerifyResult(TokenError::malformed, "empty API key");
  if (key.size() > max_key_bytes) {
    return VerifyResult(TokenError::token_too_large, "API key of " + std::to_string(key.size()) +
                                                         " bytes, more than max_key_bytes " +
                                                         std::to_string(max_key_bytes));
  }
  if (!std::all_of(key.begin(), key.end(), is_key_char)) {
    return VerifyResult(TokenError::malformed, "API key holds a space, control or non-ASCII byte");
  }
  Digest d{};
  if (!sha256(md.get(), key, d)) return VerifyResult(TokenError::internal, "SHA-256 failed");

  // The search compares digests with ordinary, early-exit comparisons, so its timing may tell how
  // many leading bytes of SHA-256(presented key) match a stored digest. That is worth nothing: the
  // client cannot steer the digest byte by byte (changing one key bit changes every digest bit
  // unpredictably), so it cannot grow a matching prefix step by step as it could against a plain
  // key comparison, and even a whole stored digest would not give back its key (preimage
  // resistance; keys are long random strings). The decisive comparison is still constant-time.
  const auto it = std::lower_bound(entries.begin(), entries.end(), d,
                                   [](const Entry& e, const Digest& x) { return e.digest < x; });
  if (it != entries.end() && CRYPTO_memcmp(it->digest.data(), d.data(), d.size()) == 0) {
    return VerifyResult(it->claims);  // shares the payload built at construction
  }
  // A prefix of the digest lets the log correlate repeated attempts with one key; never the key.
  return VerifyResult(TokenError::unknown_key, "unknown API key (sha256 " + to_hex(d.data(), 4) + "...)");
}

ApiKeyVerifier::ApiKeyVerifier(ApiKeyVerifierOptions options)
    : impl_(std::make_unique<const Impl>(std::move(options))) {}

ApiKeyVerifier::~ApiKeyVerifier() = default;

VerifyResult ApiKeyVerifier::check(std::string_view key) const { return impl_->check(key); }

std::optional<VerifyResult> ApiKeyVerifier::try_verify_now(std::string_view token) const {
  return impl_->check(token);
}

// Decided before the coroutine starts: the caller's buffer may be gone by the time it runs.
asio::awaitable<VerifyResult> ApiKeyVerifier::verify(std::string_view token) const {
  return ready(impl_->check(token));
}

std::size_t ApiKeyVerifier::size() const noexcept { return impl_->entries.size(); }

std::size_t ApiKeyVerifier::max_key_bytes() const noexcept { return impl_->max_key_bytes; }

std::string ApiKeyVerifier::hash(std::string_view key) {
  Digest d{};
  if (!sha256(EVP_sha256(), key, d)) throw std::runtime_error("ApiKeyVerifier::hash: SHA-256 failed");
  return to_hex(d.data(), d.size());
}

}  // namespace gatehouse::auth
