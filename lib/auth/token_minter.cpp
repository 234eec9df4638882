#include "gatehouse/auth/token_minter.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "auth/base64url.hpp"
#include "auth/jwk_impl.hpp"
#include "auth/jwk_thumbprint.hpp"
#include "util/openssl_ptr.hpp"

namespace gatehouse::auth {

using detail::BioPtr;
using detail::BignumPtr;
using detail::EcdsaSigPtr;
using detail::MdPtr;
using detail::MdCtxPtr;
using detail::PkeyPtr;
namespace {

using time_point = std::chrono::system_clock::time_point;


constexpr int kP256Coordinate = 32;  // bytes of one coordinate, of r and of s
constexpr std::size_t kCacheCapacity = 1024;  // per thread

[[noreturn]] void fail(const std::string& what) {
  ERR_clear_error();  // this thread's OpenSSL error queue is read by TLS code too
  throw std::invalid_argument("TokenMinter: " + what);
}

// Keys wiped from memory when they go out of scope.
struct SecretText {
  std::string text;
  ~SecretText() {
    if (!text.empty()) OPENSSL_cleanse(text.data(), text.size());
  }
};

SecretText read_key_file(const std::string& file) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) fail("cannot read key file \"" + file + "\": " + std::generic_category().message(errno));
  SecretText out;
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) {
    if (out.text.size() + n > 1 << 20) fail("key file \"" + file + "\" is too large for a PEM key");
    out.text.append(buf.data(), n);
  }
  const bool error = std::ferror(f.get()) != 0;
  OPENSSL_cleanse(buf.data(), buf.size());
  if (error) fail("cannot read key file \"" + file + "\"");
  return out;
}

// Encrypted keys are refused rather than prompted for on a terminal.
int no_password(char*, int, int, void*) { return -1; }

PkeyPtr load_private_key(std::string_view pem, const std::string& where) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) fail("out of memory");
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, &no_password, nullptr));
  if (!key) fail(where + " holds no PEM private key (unencrypted \"PRIVATE KEY\" or \"EC PRIVATE KEY\")");
  return key;
}

PkeyPtr generate_key(JwsAlgorithm alg) {
  EVP_PKEY* k = alg == JwsAlgorithm::es256 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                                           : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!k) fail("key generation failed");
  return PkeyPtr(k);
}

void check_key_fits(EVP_PKEY* key, JwsAlgorithm alg, const std::string& where) {
  const char* type = EVP_PKEY_get0_type_name(key);
  const std::string type_name = type ? type : "unknown";
  if (alg == JwsAlgorithm::eddsa) {
    if (!EVP_PKEY_is_a(key, "ED25519")) fail("EdDSA needs an Ed25519 key; " + where + " is a " + type_name + " key");
    return;
  }
  if (!EVP_PKEY_is_a(key, "EC")) fail("ES256 needs a P-256 EC key; " + where + " is a " + type_name + " key");
  std::array<char, 64> group{};
  std::size_t len = 0;
  if (EVP_PKEY_get_group_name(key, group.data(), group.size(), &len) != 1 ||
      std::string_view(group.data(), len) != "prime256v1") {
    fail("ES256 needs a P-256 EC key; " + where + " is on curve \"" + std::string(group.data(), len) + "\"");
  }
}

std::string bn_coordinate(EVP_PKEY* key, const char* param) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &raw) != 1) fail("cannot read the public key");
  BignumPtr bn(raw);
  std::array<unsigned char, kP256Coordinate> out{};
  if (BN_bn2binpad(bn.get(), out.data(), kP256Coordinate) != kP256Coordinate) {
    fail("cannot read the public key");
  }
  return base64url_encode(out.data(), out.size());
}

nlohmann::json public_jwk(EVP_PKEY* key, JwsAlgorithm alg) {
  nlohmann::json jwk = nlohmann::json::object();
  if (alg == JwsAlgorithm::es256) {
    jwk["kty"] = "EC";
    jwk["crv"] = "P-256";
    jwk["x"] = bn_coordinate(key, OSSL_PKEY_PARAM_EC_PUB_X);
    jwk["y"] = bn_coordinate(key, OSSL_PKEY_PARAM_EC_PUB_Y);
  } else {
    std::array<unsigned char, 32> raw{};
    std::size_t len = raw.size();
    if (EVP_PKEY_get_raw_public_key(key, raw.data(), &len) != 1 || len != raw.size()) {
      fail("cannot read the public key");
    }
    jwk["kty"] = "OKP";
    jwk["crv"] = "Ed25519";
    jwk["x"] = base64url_encode(raw.data(), raw.size());
  }
  return jwk;
}

std::uint64_t next_minter_id() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

// The per-thread cache: minted tokens by (minter, source claims payload). An entry holds a copy of
// the claims, which keeps their payload alive, so its address cannot be reused by another identity
// while the entry exists; the minter's id is never reused either.
struct MintCacheKey {
  std::uint64_t minter;
  const void* payload;
  bool operator==(const MintCacheKey&) const noexcept = default;
};
struct MintCacheKeyHash {
  std::size_t operator()(const MintCacheKey& k) const noexcept {
    return std::hash<const void*>{}(k.payload) ^ static_cast<std::size_t>(k.minter * 0x9E3779B97F4A7C15ull);
  }
};
struct CacheEntry {
  Claims source;
  std::string token;
  time_point minted_at;    // iat
  time_point reuse_until;  // iat + half the token's lifetime
};
using Cache = std::unordered_map<MintCacheKey, CacheEntry, MintCacheKeyHash>;

Cache& thread_cache() {
  static thread_local Cache cache;
  return cache;
}

}  // namespace

struct TokenMinter::Impl {
  TokenMinterOptions options;
  JwsAlgorithm alg = JwsAlgorithm::es256;
  PkeyPtr key;
  MdPtr md;  // SHA-256 for ES256, fetched once; null for EdDSA
  std::string header_dot;              // base64url(header) "."
  std::string kid;
  std::string jwks;
  std::uint64_t id = next_minter_id();

  std::string sign(std::string_view input) const;
  std::string mint_new(const Claims& source, time_point now, time_point& iat_out, time_point& exp_out) const;
};

std::string TokenMinter::Impl::sign(std::string_view input) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::array<unsigned char, 160> sig{};  // DER ECDSA P-256 <= 72 bytes, Ed25519 64
  std::size_t len = sig.size();
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, md.get(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &len, in, input.size()) != 1) {
    ERR_clear_error();
    throw std::runtime_error("TokenMinter: signing failed");
  }
  if (alg == JwsAlgorithm::eddsa) return base64url_encode(sig.data(), len);
  // OpenSSL writes ECDSA signatures in DER; JWS wants fixed-size big-endian r||s (RFC 7518 3.4).
  const unsigned char* p = sig.data();
  EcdsaSigPtr es(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
  std::array<unsigned char, 2 * kP256Coordinate> raw{};
  if (!es || BN_bn2binpad(ECDSA_SIG_get0_r(es.get()), raw.data(), kP256Coordinate) != kP256Coordinate ||
      BN_bn2binpad(ECDSA_SIG_get0_s(es.get()), raw.data() + kP256Coordinate, kP256Coordinate) != kP256Coordinate) {
    ERR_clear_error();
    throw std::runtime_error("TokenMinter: cannot convert the ECDSA signature");
  }
  return base64url_encode(raw.data(), raw.size());
}

std::string TokenMinter::Impl::mint_new(const Claims& source, time_point now, time_point& iat_out,
                                        time_point& exp_out) const {
  const std::int64_t iat = std::chrono::floor<std::chrono::seconds>(now).time_since_epoch().count();
  std::int64_t exp = iat + options.lifetime.count();
  // The internal token never outlives the credential it stands for.
  if (const auto source_exp = source.number("exp"); source_exp && std::isfinite(*source_exp) &&
                                                    *source_exp < static_cast<double>(exp)) {
    exp = static_cast<std::int64_t>(std::max(std::floor(*source_exp), 0.0));
  }

  nlohmann::ordered_json claims = nlohmann::ordered_json::object();
  claims["iss"] = options.issuer;
  if (!options.audience.empty()) claims["aud"] = options.audience;
  for (const auto& name : options.copy_claims) {
    const ClaimValue v = source.get(name);
    if (v) claims[name] = nlohmann::ordered_json::parse(v.dump());
  }
  claims["iat"] = iat;
  if (options.not_before) claims["nbf"] = iat;
  claims["exp"] = exp;
  std::array<unsigned char, 16> jti{};
  if (RAND_bytes(jti.data(), static_cast<int>(jti.size())) != 1) {
    ERR_clear_error();
    throw std::runtime_error("TokenMinter: no random bytes for jti");
  }
  claims["jti"] = base64url_encode(jti.data(), jti.size());

  std::string token = header_dot;
  token += base64url_encode(claims.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  token += '.' + sign(token);
  iat_out = time_point(std::chrono::seconds(iat));
  exp_out = time_point(std::chrono::seconds(exp));
  return token;
}

TokenMinter::TokenMinter(TokenMinterOptions options) {
  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  SecretText pem{std::move(options.key_pem)};
  options.key_pem.clear();
  m.options = std::move(options);
  const TokenMinterOptions& o = m.options;

  if (o.algorithm == "ES256") {
    m.alg = JwsAlgorithm::es256;
  } else if (o.algorithm == "EdDSA") {
    m.alg = JwsAlgorithm::eddsa;
  } else {
    fail("algorithm must be \"ES256\" or \"EdDSA\", got \"" + o.algorithm + "\"");
  }
  if (o.issuer.empty()) fail("an issuer is required");
  if (o.lifetime < std::chrono::seconds(1) || o.lifetime > std::chrono::hours(1)) {
    fail("lifetime must be within 1 s..1 h, got " + std::to_string(o.lifetime.count()) + " s");
  }
  static constexpr std::array<std::string_view, 6> kOwn = {"iss", "aud", "iat", "nbf", "exp", "jti"};
  for (std::size_t i = 0; i < o.copy_claims.size(); ++i) {
    const std::string& c = o.copy_claims[i];
    if (c.empty()) fail("empty claim name in copy_claims");
    if (std::find(kOwn.begin(), kOwn.end(), c) != kOwn.end()) {
      fail("claim \"" + c + "\" is set by the minter and cannot be copied");
    }
    if (std::find(o.copy_claims.begin(), o.copy_claims.begin() + static_cast<std::ptrdiff_t>(i), c) !=
        o.copy_claims.begin() + static_cast<std::ptrdiff_t>(i)) {
      fail("claim \"" + c + "\" is listed twice in copy_claims");
    }
  }

  if (!o.key_file.empty() && !pem.text.empty()) fail("give key_file or key_pem, not both");
  if (!o.key_file.empty()) {
    const SecretText file = read_key_file(o.key_file);
    m.key = load_private_key(file.text, "key file \"" + o.key_file + "\"");
    check_key_fits(m.key.get(), m.alg, "key file \"" + o.key_file + "\"");
  } else if (!pem.text.empty()) {
    m.key = load_private_key(pem.text, "key_pem");
    check_key_fits(m.key.get(), m.alg, "key_pem");
  } else {
    m.key = generate_key(m.alg);
  }
  if (m.alg == JwsAlgorithm::es256) {
    m.md.reset(EVP_MD_fetch(nullptr, "SHA256", nullptr));
    if (!m.md) fail("SHA-256 is not available");
  }

  nlohmann::json jwk = public_jwk(m.key.get(), m.alg);
  m.kid = jwk_thumbprint(jwk);
  jwk["kid"] = m.kid;
  jwk["alg"] = o.algorithm;
  jwk["use"] = "sig";
  m.jwks = nlohmann::json{{"keys", nlohmann::json::array({jwk})}}.dump();
  const nlohmann::json header = {{"alg", o.algorithm}, {"kid", m.kid}, {"typ", "JWT"}};
  m.header_dot = base64url_encode(header.dump()) + '.';
  impl_ = std::move(impl);
}

TokenMinter::~TokenMinter() = default;

std::string TokenMinter::mint(const Claims& source, time_point now) const {
  const Impl& m = *impl_;
  time_point iat, exp;
  if (!m.options.cache) return m.mint_new(source, now, iat, exp);

  Cache& cache = thread_cache();
  const MintCacheKey key{m.id, source.payload_id()};
  if (const auto it = cache.find(key); it != cache.end()) {
    if (it->second.minted_at <= now && now < it->second.reuse_until) return it->second.token;
    cache.erase(it);
  }
  std::string token = m.mint_new(source, now, iat, exp);
  if (cache.size() >= kCacheCapacity) {
    std::erase_if(cache, [now](const auto& entry) { return now >= entry.second.reuse_until; });
    if (cache.size() >= kCacheCapacity) cache.clear();
  }
  const time_point reuse_until = iat + (exp - iat) / 2;
  if (now < reuse_until) cache.emplace(key, CacheEntry{source, token, iat, reuse_until});
  return token;
}

const std::string& TokenMinter::jwks_json() const noexcept { return impl_->jwks; }
const std::string& TokenMinter::kid() const noexcept { return impl_->kid; }
JwsAlgorithm TokenMinter::algorithm() const noexcept { return impl_->alg; }
const TokenMinterOptions& TokenMinter::options() const noexcept { return impl_->options; }

}  // namespace gatehouse::auth
