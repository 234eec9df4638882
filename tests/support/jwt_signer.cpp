#include "support/jwt_signer.hpp"

#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "auth/base64url.hpp"

namespace gatehouse::test {
namespace {

[[noreturn]] void die(const std::string& what) { throw std::runtime_error("jwt_signer: " + what); }

std::string_view family(std::string_view alg) {
  if (alg.starts_with("RS") || alg.starts_with("PS")) return "RSA";
  if (alg == "ES256") return "P-256";
  if (alg == "ES384") return "P-384";
  if (alg == "ES512") return "P-521";
  if (alg == "EdDSA") return "Ed25519";
  if (alg.starts_with("HS")) return "HMAC";
  die("unknown alg " + std::string(alg));
}

const char* digest(std::string_view alg) {
  if (alg.ends_with("256")) return "SHA256";
  if (alg.ends_with("384")) return "SHA384";
  if (alg.ends_with("512")) return "SHA512";
  return nullptr;  // EdDSA
}

std::shared_ptr<evp_pkey_st> keygen(std::string_view fam) {
  EVP_PKEY* k = nullptr;
  if (fam == "RSA") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
  else if (fam == "Ed25519") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  else k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", std::string(fam).c_str());
  if (!k) die("key generation failed");
  return std::shared_ptr<evp_pkey_st>(k, EVP_PKEY_free);
}

std::string bn_param(EVP_PKEY* k, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(k, name, &bn) != 1) die(std::string("no param ") + name);
  std::string out(pad ? static_cast<std::size_t>(pad) : static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  const int n = pad ? BN_bn2binpad(bn, p, pad) : BN_bn2bin(bn, p);
  BN_free(bn);
  if (n < 0) die("bn export failed");
  return out;
}

}  // namespace

std::string b64url(std::string_view bytes) { return auth::base64url_encode(bytes); }

TestKey TestKey::generate(std::string_view alg, bool fresh) {
  static std::mutex mutex;
  static std::map<std::string, TestKey, std::less<>> shared;
  const std::string_view fam = family(alg);
  std::lock_guard lock(mutex);
  if (!fresh) {
    if (const auto it = shared.find(fam); it != shared.end()) return it->second.as(alg);
  }
  TestKey key;
  key.alg_ = std::string(alg);
  if (fam == "HMAC") {
    // Long enough for HS512, so one secret serves every HS algorithm.
    key.secret_.resize(64);
    RAND_bytes(reinterpret_cast<unsigned char*>(key.secret_.data()), 64);
  } else {
    key.pkey_ = keygen(fam);
  }
  if (!fresh) shared.emplace(std::string(fam), key);
  return key;
}

TestKey TestKey::as(std::string_view alg) const {
  TestKey k = *this;
  k.alg_ = std::string(alg);
  return k;
}

nlohmann::json TestKey::public_jwk(std::string_view kid, bool with_alg) const {
  nlohmann::json j;
  const std::string_view fam = family(alg_);
  EVP_PKEY* k = pkey_.get();
  if (fam == "HMAC") {
    j["kty"] = "oct";
    j["k"] = b64url(secret_);
  } else if (fam == "RSA") {
    j["kty"] = "RSA";
    j["n"] = b64url(bn_param(k, OSSL_PKEY_PARAM_RSA_N));
    j["e"] = b64url(bn_param(k, OSSL_PKEY_PARAM_RSA_E));
  } else if (fam == "Ed25519") {
    std::string x(32, '\0');
    std::size_t len = x.size();
    if (EVP_PKEY_get_raw_public_key(k, reinterpret_cast<unsigned char*>(x.data()), &len) != 1) die("raw key");
    j["kty"] = "OKP";
    j["crv"] = "Ed25519";
    j["x"] = b64url(x);
  } else {
    const int size = fam == "P-256" ? 32 : fam == "P-384" ? 48 : 66;
    j["kty"] = "EC";
    j["crv"] = std::string(fam);
    j["x"] = b64url(bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, size));
    j["y"] = b64url(bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, size));
  }
  if (!kid.empty()) j["kid"] = std::string(kid);
  if (with_alg) j["alg"] = alg_;
  return j;
}

nlohmann::json TestKey::jwks(std::string_view kid) const {
  return {{"keys", nlohmann::json::array({public_jwk(kid)})}};
}

std::string TestKey::public_pem() const {
  if (!pkey_) die("no public key for HMAC");
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio || PEM_write_bio_PUBKEY(bio, pkey_.get()) != 1) die("PEM export failed");
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  return pem;
}

std::string hmac_sign(std::string_view alg, std::string_view secret, std::string_view input) {
  const EVP_MD* md = alg == "HS256" ? EVP_sha256() : alg == "HS384" ? EVP_sha384() : EVP_sha512();
  unsigned char tag[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(md, secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(input.data()), input.size(), tag, &len)) {
    die("HMAC failed");
  }
  return std::string(reinterpret_cast<char*>(tag), len);
}

std::string TestKey::sign(std::string_view input, bool der) const {
  if (family(alg_) == "HMAC") return hmac_sign(alg_, secret_, input);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx || EVP_DigestSignInit_ex(ctx, &pctx, digest(alg_), nullptr, nullptr, pkey_.get(), nullptr) != 1) {
    die("sign init failed");
  }
  if (alg_.starts_with("PS")) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, digest(alg_), nullptr);
  }
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  std::size_t len = 0;
  if (EVP_DigestSign(ctx, nullptr, &len, in, input.size()) != 1) die("sign size failed");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, in, input.size()) != 1) {
    die("sign failed");
  }
  EVP_MD_CTX_free(ctx);
  sig.resize(len);
  if (!alg_.starts_with("ES") || der) return sig;
  // ECDSA: DER SEQUENCE{r, s} to fixed-size r||s.
  const int size = alg_ == "ES256" ? 32 : alg_ == "ES384" ? 48 : 66;
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  if (!es) die("bad DER signature");
  std::string raw(2 * static_cast<std::size_t>(size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  BN_bn2binpad(ECDSA_SIG_get0_r(es), out, size);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), out + size, size);
  ECDSA_SIG_free(es);
  return raw;
}

std::string signing_input(std::string_view header_json, std::string_view payload_json) {
  return b64url(header_json) + "." + b64url(payload_json);
}

std::string make_token_text(const TestKey& key, std::string_view header_json, std::string_view payload_json,
                            bool der) {
  const std::string input = signing_input(header_json, payload_json);
  return input + "." + b64url(key.sign(input, der));
}

std::string make_token(const TestKey& key, const nlohmann::json& header, const nlohmann::json& payload) {
  return make_token_text(key, header.dump(), payload.dump());
}

auth::VerifyResult run_verify(const auth::TokenVerifier& verifier, std::string_view token) {
  asio::io_context io;
  std::optional<auth::VerifyResult> out;
  std::exception_ptr error;
  asio::co_spawn(io, verifier.verify(token), [&](std::exception_ptr e, auth::VerifyResult r) {
    error = e;
    out.emplace(std::move(r));
  });
  io.run();
  if (error) std::rethrow_exception(error);
  if (!out) throw std::logic_error("verify() did not complete");
  return std::move(*out);
}

}  // namespace gatehouse::test
