#include "gatehouse/auth/jwk.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <utility>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth/algorithm_traits.hpp"
#include "auth/base64url.hpp"
#include "auth/jwk_impl.hpp"
#include "util/openssl_ptr.hpp"
#include "util/text.hpp"

namespace gatehouse::auth {

using detail::BioPtr;
using detail::BignumPtr;
using detail::PkeyPtr;
using detail::PkeyCtxPtr;
using detail::DecoderCtxPtr;
using detail::ParamPtr;
using detail::ParamBldPtr;
using detail::X509Ptr;
using detail::printable;
namespace {

using json = nlohmann::json;

constexpr std::size_t kMinRsaBits = 2048;
constexpr std::size_t kMaxRsaBits = 16384;  // bounds the cost of one verification
constexpr std::size_t kMinSecretBytes = 32;

std::atomic<std::uint64_t> next_generation{1};


// Secret bytes on their way into a key: wiped when they go out of scope.
struct Wiped {
  std::string bytes;
  ~Wiped() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

[[noreturn]] void reject_jwk(std::string_view kid, std::string_view why) {
  ERR_clear_error();
  std::string msg = "JWK";
  if (!kid.empty()) msg += " " + printable(kid);
  msg += ": ";
  msg += why;
  throw std::invalid_argument(msg);
}

const std::string* member_string(const json& j, const char* name, std::string_view kid) {
  const auto it = j.find(name);
  if (it == j.end()) return nullptr;
  if (!it->is_string()) reject_jwk(kid, std::string("\"") + name + "\" is not a string");
  return &it->get_ref<const std::string&>();
}

void decode_member(const json& j, const char* name, std::string_view kid, std::string& out) {
  const std::string* s = member_string(j, name, kid);
  if (!s) reject_jwk(kid, std::string("\"") + name + "\" is missing");
  if (!base64url_decode(*s, out)) reject_jwk(kid, std::string("\"") + name + "\" is not base64url");
}

std::string_view strip_leading_zeros(std::string_view s) {
  while (!s.empty() && s.front() == '\0') s.remove_prefix(1);
  return s;
}

PkeyPtr pkey_from_params(const char* type, OSSL_PARAM_BLD* bld, std::string_view kid) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    reject_jwk(kid, "key parameters rejected by OpenSSL");
  }
  return PkeyPtr(raw);
}

// Full public-key validation: EC point on the curve and in the right subgroup, RSA modulus odd and
// without small factors, exponent in range.
void check_public(EVP_PKEY* pkey, std::string_view kid) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!ctx || EVP_PKEY_public_check(ctx.get()) != 1) reject_jwk(kid, "public key failed validation");
}

void check_rsa_bits(std::size_t bits, std::string_view kid) {
  if (bits < kMinRsaBits) reject_jwk(kid, "RSA modulus shorter than 2048 bits");
  if (bits > kMaxRsaBits) reject_jwk(kid, "RSA modulus longer than 16384 bits");
}

PkeyPtr rsa_key(std::string_view n, std::string_view e, std::string_view kid, std::size_t& bits) {
  n = strip_leading_zeros(n);
  e = strip_leading_zeros(e);
  if (n.empty() || e.empty()) reject_jwk(kid, "RSA n or e is zero");
  if (e.size() > 32) reject_jwk(kid, "RSA exponent too large");
  BignumPtr bn_n(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr));
  BignumPtr bn_e(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr));
  if (!bn_n || !bn_e) reject_jwk(kid, "out of memory");
  bits = static_cast<std::size_t>(BN_num_bits(bn_n.get()));
  check_rsa_bits(bits, kid);
  // e = 1 would make every message its own signature; even values are never valid.
  if (!BN_is_odd(bn_n.get()) || !BN_is_odd(bn_e.get()) || BN_is_one(bn_e.get())) {
    reject_jwk(kid, "RSA modulus or exponent is invalid");
  }
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    reject_jwk(kid, "out of memory");
  }
  PkeyPtr pkey = pkey_from_params("RSA", bld.get(), kid);
  check_public(pkey.get(), kid);
  return pkey;
}

const char* ec_group_name(std::string_view crv) {
  if (crv == "P-256") return "prime256v1";
  if (crv == "P-384") return "secp384r1";
  if (crv == "P-521") return "secp521r1";
  return nullptr;
}

std::size_t ec_field_bits(std::string_view crv) {
  return crv == "P-256" ? 256 : crv == "P-384" ? 384 : crv == "P-521" ? 521 : 0;
}

PkeyPtr ec_key(std::string_view crv, std::string_view x, std::string_view y, std::string_view kid) {
  const char* group = ec_group_name(crv);
  if (!group) reject_jwk(kid, "unsupported EC curve " + printable(crv));
  // RFC 7518 section 6.2.1.2: coordinates are full length, never shortened.
  const std::size_t size = ec_coordinate_size(crv);
  if (x.size() != size || y.size() != size) reject_jwk(kid, "EC coordinate has the wrong length");
  std::string point;
  point.reserve(1 + 2 * size);
  point.push_back('\x04');  // uncompressed SEC1 point
  point.append(x);
  point.append(y);
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    reject_jwk(kid, "out of memory");
  }
  PkeyPtr pkey = pkey_from_params("EC", bld.get(), kid);
  check_public(pkey.get(), kid);
  return pkey;
}

PkeyPtr ed25519_key(std::string_view x, std::string_view kid) {
  if (x.size() != 32) reject_jwk(kid, "Ed25519 public key must be 32 bytes");
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, x.data(), x.size()) != 1) {
    reject_jwk(kid, "out of memory");
  }
  PkeyPtr pkey = pkey_from_params("ED25519", bld.get(), kid);
  check_public(pkey.get(), kid);
  return pkey;
}

// Applies an optional pinned algorithm: it must be one we verify and must fit the key.
void apply_alg(JsonWebKey::Impl& impl, std::string_view alg) {
  if (alg.empty()) return;
  const auto parsed = parse_jws_algorithm(alg);
  if (!parsed) reject_jwk(impl.kid, "alg " + printable(alg) + " is not a supported signature algorithm");
  if (key_type_for(*parsed) != impl.type) reject_jwk(impl.kid, "alg " + printable(alg) + " does not fit the key type");
  const std::string_view crv = curve_for(*parsed);
  if (!crv.empty() && crv != impl.curve) reject_jwk(impl.kid, "alg " + printable(alg) + " does not fit the curve");
  if (impl.type == KeyType::oct && impl.secret.size() < digest_size_for(*parsed)) {
    reject_jwk(impl.kid, "HMAC secret shorter than the hash of its alg");
  }
  impl.alg = std::string(alg);
}

void check_secret(std::string_view secret, std::string_view kid) {
  if (secret.size() < kMinSecretBytes) reject_jwk(kid, "HMAC secret shorter than 32 bytes");
}

// Public keys need no passphrase. Without a callback OpenSSL asks for one on the terminal, and
// waits, when a PEM block says "Proc-Type: 4,ENCRYPTED".
int no_passphrase(char*, int, int, void*) { return -1; }

}  // namespace

JsonWebKey::Impl::~Impl() { OPENSSL_cleanse(secret.data(), secret.size()); }

JsonWebKey::JsonWebKey(std::shared_ptr<const Impl> impl) noexcept : impl_(std::move(impl)) {}

JsonWebKey JsonWebKey::from_json(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) reject_jwk({}, "invalid JSON");
  return from_json(j);
}

JsonWebKey JsonWebKey::from_json(const nlohmann::json& jwk) {
  if (!jwk.is_object()) reject_jwk({}, "not a JSON object");
  auto impl = std::make_shared<Impl>();
  if (const std::string* kid = member_string(jwk, "kid", {})) impl->kid = *kid;
  const std::string_view kid = impl->kid;
  const std::string* kty = member_string(jwk, "kty", kid);
  if (!kty) reject_jwk(kid, "\"kty\" is missing");
  if (const std::string* use = member_string(jwk, "use", kid)) impl->use = *use;
  if (const auto ops = jwk.find("key_ops"); ops != jwk.end()) {
    if (!ops->is_array()) reject_jwk(kid, "\"key_ops\" is not an array");
    std::vector<std::string> list;
    for (const auto& op : *ops) {
      if (!op.is_string()) reject_jwk(kid, "\"key_ops\" holds a non-string");
      list.push_back(op.get<std::string>());
    }
    impl->key_ops = std::move(list);
  }

  if (*kty == "RSA") {
    impl->type = KeyType::rsa;
    std::string n, e;
    decode_member(jwk, "n", kid, n);
    decode_member(jwk, "e", kid, e);
    impl->pkey = rsa_key(n, e, kid, impl->bits);
  } else if (*kty == "EC") {
    impl->type = KeyType::ec;
    const std::string* crv = member_string(jwk, "crv", kid);
    if (!crv) reject_jwk(kid, "\"crv\" is missing");
    if (!ec_group_name(*crv)) reject_jwk(kid, "unsupported EC curve " + printable(*crv));
    std::string x, y;
    decode_member(jwk, "x", kid, x);
    decode_member(jwk, "y", kid, y);
    impl->pkey = ec_key(*crv, x, y, kid);
    impl->curve = *crv;
    impl->bits = ec_field_bits(*crv);
  } else if (*kty == "OKP") {
    impl->type = KeyType::okp;
    const std::string* crv = member_string(jwk, "crv", kid);
    if (!crv) reject_jwk(kid, "\"crv\" is missing");
    if (*crv != "Ed25519") reject_jwk(kid, "unsupported OKP curve " + printable(*crv));
    std::string x;
    decode_member(jwk, "x", kid, x);
    impl->pkey = ed25519_key(x, kid);
    impl->curve = *crv;
    impl->bits = 256;
  } else if (*kty == "oct") {
    impl->type = KeyType::oct;
    Wiped k;
    decode_member(jwk, "k", kid, k.bytes);
    check_secret(k.bytes, kid);
    impl->secret.assign(k.bytes);
    impl->bits = impl->secret.size() * 8;
  } else {
    reject_jwk(kid, "unsupported kty " + printable(*kty));
  }
  if (const std::string* alg = member_string(jwk, "alg", kid)) apply_alg(*impl, *alg);
  return JsonWebKey(std::move(impl));
}

JsonWebKey JsonWebKey::from_pem(std::string_view pem, std::string_view alg, std::string_view kid) {
  auto impl = std::make_shared<Impl>();
  impl->kid = std::string(kid);
  if (pem.size() > 1'000'000) reject_jwk(kid, "PEM text too large");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) reject_jwk(kid, "out of memory");
  EVP_PKEY* raw = nullptr;
  if (pem.find("-----BEGIN CERTIFICATE-----") != std::string_view::npos) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr));
    if (!cert) reject_jwk(kid, "unreadable PEM certificate");
    raw = X509_get_pubkey(cert.get());
  } else {
    DecoderCtxPtr dctx(OSSL_DECODER_CTX_new_for_pkey(
        &raw, "PEM", nullptr, nullptr, EVP_PKEY_PUBLIC_KEY, nullptr, nullptr));
    if (!dctx || OSSL_DECODER_from_bio(dctx.get(), bio.get()) != 1) raw = nullptr;
  }
  if (!raw) reject_jwk(kid, "no public key found in the PEM text");
  impl->pkey.reset(raw);
  EVP_PKEY* pkey = impl->pkey.get();
  if (EVP_PKEY_is_a(pkey, "RSA")) {
    impl->type = KeyType::rsa;
    impl->bits = static_cast<std::size_t>(EVP_PKEY_get_bits(pkey));
    check_rsa_bits(impl->bits, kid);
  } else if (EVP_PKEY_is_a(pkey, "EC")) {
    impl->type = KeyType::ec;
    char group[64] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len) != 1) {
      reject_jwk(kid, "EC key without a named curve");
    }
    const std::string_view g(group, len);
    impl->curve = g == "prime256v1" ? "P-256" : g == "secp384r1" ? "P-384" : g == "secp521r1" ? "P-521" : "";
    if (impl->curve.empty()) reject_jwk(kid, "unsupported EC curve " + printable(g));
    impl->bits = ec_field_bits(impl->curve);
  } else if (EVP_PKEY_is_a(pkey, "ED25519")) {
    impl->type = KeyType::okp;
    impl->curve = "Ed25519";
    impl->bits = 256;
  } else {
    reject_jwk(kid, "unsupported PEM key type");
  }
  check_public(pkey, kid);
  apply_alg(*impl, alg);
  ERR_clear_error();
  return JsonWebKey(std::move(impl));
}

JsonWebKey JsonWebKey::from_secret(std::string_view secret, std::string_view alg, std::string_view kid) {
  auto impl = std::make_shared<Impl>();
  impl->kid = std::string(kid);
  impl->type = KeyType::oct;
  check_secret(secret, kid);
  impl->secret.assign(secret);
  impl->bits = secret.size() * 8;
  apply_alg(*impl, alg);
  return JsonWebKey(std::move(impl));
}

KeyType JsonWebKey::type() const noexcept { return impl_->type; }
const std::string& JsonWebKey::kid() const noexcept { return impl_->kid; }
const std::string& JsonWebKey::alg() const noexcept { return impl_->alg; }
std::string_view JsonWebKey::curve() const noexcept { return impl_->curve; }
std::size_t JsonWebKey::bits() const noexcept { return impl_->bits; }

bool JsonWebKey::can_verify(JwsAlgorithm alg) const noexcept {
  const Impl& k = *impl_;
  if (key_type_for(alg) != k.type) return false;
  if (!k.alg.empty() && k.alg != to_string(alg)) return false;
  if (!k.use.empty() && k.use != "sig") return false;
  if (k.key_ops && std::find(k.key_ops->begin(), k.key_ops->end(), "verify") == k.key_ops->end()) {
    return false;
  }
  const std::string_view crv = curve_for(alg);
  if (!crv.empty() && crv != k.curve) return false;
  if (k.type == KeyType::oct && k.secret.size() < digest_size_for(alg)) return false;
  return true;
}

JwkSet::JwkSet() : generation_(next_generation.fetch_add(1, std::memory_order_relaxed)) {}

JwkSet::JwkSet(std::vector<JsonWebKey> keys)
    : keys_(std::move(keys)), generation_(next_generation.fetch_add(1, std::memory_order_relaxed)) {
  index();
}

void JwkSet::index() {
  by_kid_.clear();
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (!keys_[i].kid().empty()) by_kid_.emplace_back(keys_[i].kid(), i);
  }
  std::stable_sort(by_kid_.begin(), by_kid_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
}

JwkSet JwkSet::parse(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw std::invalid_argument("JWKS: invalid JSON");
  return from_json(j);
}

JwkSet JwkSet::from_json(const nlohmann::json& jwks) {
  if (!jwks.is_object()) throw std::invalid_argument("JWKS: not a JSON object");
  const auto keys = jwks.find("keys");
  if (keys == jwks.end() || !keys->is_array()) throw std::invalid_argument("JWKS: no \"keys\" array");
  JwkSet set;
  std::size_t position = 0;
  for (const auto& entry : *keys) {
    ++position;
    try {
      JsonWebKey key = JsonWebKey::from_json(entry);
      const JsonWebKey::Impl& k = key.impl();
      if (!k.use.empty() && k.use != "sig") {
        set.skipped_.push_back("JWK " + printable(k.kid) + ": \"use\" is not \"sig\"");
        continue;
      }
      if (k.key_ops && std::find(k.key_ops->begin(), k.key_ops->end(), "verify") == k.key_ops->end()) {
        set.skipped_.push_back("JWK " + printable(k.kid) + ": \"key_ops\" lacks \"verify\"");
        continue;
      }
      set.keys_.push_back(std::move(key));
    } catch (const std::invalid_argument& e) {
      set.skipped_.push_back("key #" + std::to_string(position) + ": " + e.what());
    }
  }
  set.index();
  return set;
}

JwkSet JwkSet::from_pem(std::string_view pem, std::string_view alg, std::string_view kid) {
  std::vector<JsonWebKey> keys;
  keys.push_back(JsonWebKey::from_pem(pem, alg, kid));
  return JwkSet(std::move(keys));
}

bool JwkSet::contains_kid(std::string_view kid) const noexcept {
  const auto it = std::lower_bound(by_kid_.begin(), by_kid_.end(), kid,
                                   [](const auto& e, std::string_view k) { return e.first < k; });
  return it != by_kid_.end() && it->first == kid;
}

const JsonWebKey* JwkSet::find(std::string_view kid, JwsAlgorithm alg) const noexcept {
  auto it = std::lower_bound(by_kid_.begin(), by_kid_.end(), kid,
                             [](const auto& e, std::string_view k) { return e.first < k; });
  for (; it != by_kid_.end() && it->first == kid; ++it) {
    const JsonWebKey& key = keys_[it->second];
    if (key.can_verify(alg)) return &key;
  }
  return nullptr;
}

}  // namespace gatehouse::auth
