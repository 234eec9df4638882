#include "auth/jws_signature.hpp"

#include <array>
#include <memory>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "auth/algorithm_traits.hpp"
#include "auth/jwk_impl.hpp"
#include "util/openssl_ptr.hpp"

namespace gatehouse::auth {

using detail::EcdsaSigPtr;
namespace {


const EVP_MD* hmac_digest(JwsAlgorithm alg) noexcept {
  switch (digest_size_for(alg)) {
    case 32: return EVP_sha256();
    case 48: return EVP_sha384();
    case 64: return EVP_sha512();
    default: return nullptr;
  }
}

bool verify_hmac(JwsAlgorithm alg, const std::string& secret, std::string_view input,
                 std::string_view signature) noexcept {
  const EVP_MD* md = hmac_digest(alg);
  if (!md || signature.size() != digest_size_for(alg)) return false;
  std::array<unsigned char, EVP_MAX_MD_SIZE> tag{};
  unsigned int tag_len = 0;
  if (!HMAC(md, secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(input.data()), input.size(), tag.data(), &tag_len) ||
      tag_len != signature.size()) {
    return false;
  }
  const bool equal = CRYPTO_memcmp(tag.data(), signature.data(), tag_len) == 0;
  OPENSSL_cleanse(tag.data(), tag.size());
  return equal;
}

// JWS carries ECDSA signatures as fixed-size big-endian r||s; OpenSSL verifies DER.
// Returns the DER length, 0 on failure.
std::size_t ecdsa_raw_to_der(std::string_view raw, std::size_t coordinate, unsigned char* der,
                             std::size_t der_capacity) noexcept {
  if (raw.size() != 2 * coordinate) return 0;
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(p, static_cast<int>(coordinate), nullptr);
  BIGNUM* s = BN_bin2bn(p + coordinate, static_cast<int>(coordinate), nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return 0;
  }
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0 || static_cast<std::size_t>(len) > der_capacity) return 0;
  unsigned char* out = der;
  return i2d_ECDSA_SIG(sig.get(), &out) == len ? static_cast<std::size_t>(len) : 0;
}

// Readies `ctx` for EVP_DigestVerify with `key` under `alg`.
bool init_verify(EVP_MD_CTX* ctx, JwsAlgorithm alg, const JsonWebKey::Impl& key) noexcept {
  const std::string_view digest = digest_for(alg);
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (EVP_DigestVerifyInit_ex(ctx, &pctx, digest.empty() ? nullptr : digest.data(), nullptr, nullptr,
                              key.pkey.get(), nullptr) != 1) {
    return false;
  }
  if (key.type != KeyType::rsa) return true;
  if (is_pss(alg)) {
    // RFC 7518 section 3.5: MGF1 with the same hash, salt as long as the hash.
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, digest.data(), nullptr) == 1;
  }
  return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
}

// EVP_DigestVerifyInit_ex fetches the signature and digest implementations by name and builds
// provider contexts on every call: about 3 µs with OpenSSL 3.0, a sixth of an RS256 verification
// (bench/auth_bench). Each thread keeps contexts initialized once per (key, algorithm) for the
// last few keys it used, and verifies with a copy of one.
class PreparedContexts {
 public:
  PreparedContexts() = default;
  PreparedContexts(const PreparedContexts&) = delete;
  PreparedContexts& operator=(const PreparedContexts&) = delete;
  ~PreparedContexts() {
    for (Slot& s : slots_) s.clear();
    EVP_MD_CTX_free(work_);
  }

  /// A context ready for one EVP_DigestVerify, valid until the next call; nullptr on failure.
  EVP_MD_CTX* get(JwsAlgorithm alg, const JsonWebKey::Impl& key) noexcept {
    if (!work_ && !(work_ = EVP_MD_CTX_new())) return nullptr;
    EVP_PKEY* pkey = key.pkey.get();
    Slot* slot = nullptr;
    for (Slot& s : slots_) {
      if (s.pkey == pkey && s.alg == alg) {
        slot = &s;
        break;
      }
    }
    if (!slot) {
      slot = &slots_[next_];
      next_ = (next_ + 1) % slots_.size();
      slot->clear();
      EVP_MD_CTX* ready = EVP_MD_CTX_new();
      if (!ready || !init_verify(ready, alg, key) || EVP_PKEY_up_ref(pkey) != 1) {
        EVP_MD_CTX_free(ready);
        return nullptr;
      }
      *slot = Slot{pkey, alg, ready};
    }
    if (EVP_MD_CTX_copy_ex(work_, slot->ready) != 1) return nullptr;
    // Nothing is appended after the one-shot verify: let it finish without copying its context.
    EVP_MD_CTX_set_flags(work_, EVP_MD_CTX_FLAG_FINALISE);
    return work_;
  }

 private:
  struct Slot {
    // A reference of our own: while cached, this address cannot be reused by another key.
    EVP_PKEY* pkey = nullptr;
    JwsAlgorithm alg = JwsAlgorithm::rs256;
    EVP_MD_CTX* ready = nullptr;
    void clear() noexcept {
      EVP_MD_CTX_free(ready);
      EVP_PKEY_free(pkey);
      *this = Slot{};
    }
  };
  std::array<Slot, 8> slots_{};
  std::size_t next_ = 0;
  EVP_MD_CTX* work_ = nullptr;
};

bool verify_asymmetric(JwsAlgorithm alg, const JsonWebKey::Impl& key, std::string_view input,
                       std::string_view signature) noexcept {
  std::array<unsigned char, 160> der{};  // DER of a P-521 signature is at most 139 bytes
  const auto* sig = reinterpret_cast<const unsigned char*>(signature.data());
  std::size_t sig_len = signature.size();
  if (key.type == KeyType::ec) {
    sig_len = ecdsa_raw_to_der(signature, ec_coordinate_size(key.curve), der.data(), der.size());
    if (sig_len == 0) return false;
    sig = der.data();
  }
  thread_local PreparedContexts prepared;
  EVP_MD_CTX* ctx = prepared.get(alg, key);
  return ctx && EVP_DigestVerify(ctx, sig, sig_len, reinterpret_cast<const unsigned char*>(input.data()),
                                 input.size()) == 1;
}

}  // namespace

bool verify_jws_signature(JwsAlgorithm alg, const JsonWebKey& key, std::string_view signing_input,
                          std::string_view signature) noexcept {
  if (!key.can_verify(alg)) return false;
  const JsonWebKey::Impl& impl = key.impl();
  const bool ok = impl.type == KeyType::oct ? verify_hmac(alg, impl.secret, signing_input, signature)
                                            : impl.pkey && verify_asymmetric(alg, impl, signing_input, signature);
  // A failed check leaves entries in this thread's OpenSSL error queue; other code (TLS) reads it.
  if (!ok) ERR_clear_error();
  return ok;
}

}  // namespace gatehouse::auth
