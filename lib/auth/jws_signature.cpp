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

namespace gatehouse::auth {
namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const noexcept { ECDSA_SIG_free(p); }
};

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
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
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
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  const std::string_view digest = digest_for(alg);
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (EVP_DigestVerifyInit_ex(ctx.get(), &pctx, digest.empty() ? nullptr : digest.data(), nullptr,
                              nullptr, key.pkey.get(), nullptr) != 1) {
    return false;
  }
  if (key.type == KeyType::rsa) {
    if (is_pss(alg)) {
      // RFC 7518 section 3.5: MGF1 with the same hash, salt as long as the hash.
      if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
          EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
          EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, digest.data(), nullptr) != 1) {
        return false;
      }
    } else if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
      return false;
    }
  }
  return EVP_DigestVerify(ctx.get(), sig, sig_len, reinterpret_cast<const unsigned char*>(input.data()),
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
