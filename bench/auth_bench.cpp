// JWT verification rate per JWS algorithm, single-threaded: gatehouse's JwtVerifier (cache off)
// next to OpenSSL's EVP verify of the same signing input with the same key, plus the cost of a
// verified-token cache hit. Run by hand or through bench/auth_run.sh (see bench/README.md).
//
//   auth_bench [--tsv]
//   AUTH_BENCH_SECONDS  CPU seconds of measurement per algorithm and method (default 1, fractions
//                       ok); rates are calls per second of this thread's CPU time
//   AUTH_BENCH_ALGS     subset, e.g. "RS256 ES256" (default: all thirteen)
//
// "raw EVP" makes the OpenSSL calls of a one-off verification, all per call: for RSA, ECDSA and
// EdDSA a fresh EVP_MD_CTX, EVP_DigestVerifyInit_ex (digest by name, PSS parameters when needed)
// and EVP_DigestVerify on the DER signature; for HMAC a fresh EVP_MAC_CTX from a fetched HMAC,
// init with the key, update, final and a constant-time compare. "prepared EVP" does the per-key
// part once and then, per call, copies that context and verifies (gatehouse does the same): the
// floor for any EVP-based verifier. What gatehouse adds to it is the JWS/JWT work: splitting,
// base64url, strict JSON parsing of header and payload, issuer and key lookup, raw-to-DER for
// ECDSA, claim checks and the Claims object ("JWT work µs").
#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/auth/key_source.hpp"
#include "support/jwt_signer.hpp"

namespace {

using namespace gatehouse;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::array<const char*, 13> kAlgs{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
                                            "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512"};
constexpr const char* kIssuer = "https://login.example.com/";
constexpr const char* kAudience = "orders-api";
constexpr int kRounds = 5;  // gatehouse and raw alternate in this many slices: drift hits both alike

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "auth_bench: %s\n", what.c_str());
  std::exit(1);
}

const char* digest_of(std::string_view alg) {
  if (alg.ends_with("256")) return "SHA256";
  if (alg.ends_with("384")) return "SHA384";
  if (alg.ends_with("512")) return "SHA512";
  return nullptr;  // EdDSA hashes internally
}

// A typical access token from an OpenID Connect provider: ~450 bytes of claims.
json realistic_claims() {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  return {{"iss", kIssuer},
          {"sub", "auth0|5f7c8ec7c33c6c004bbafe82"},
          {"aud", {kAudience, "https://login.example.com/userinfo"}},
          {"azp", "2Vh9Xq1mKcPzR8sT4uW6yB0dF3gJ5lN7"},
          {"exp", now + 3600},
          {"iat", now},
          {"nbf", now},
          {"jti", "b6f1c0e2-7d4a-4c1e-9a35-3e8f2d6b9c71"},
          {"scope", "openid profile email orders:read orders:write inventory:read"},
          {"email", "alice.martin@example.com"},
          {"email_verified", true},
          {"name", "Alice Martin"},
          {"tenant", "acme-europe"},
          {"roles", {"customer", "beta-tester"}}};
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};

EVP_PKEY* pkey_from_pem(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = bio ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  if (!k) die("cannot read the public key PEM");
  return k;
}

// One signature check with plain OpenSSL calls (see the file comment).
class RawVerifier {
 public:
  RawVerifier(const test::TestKey& key, std::string input)
      : alg_(key.alg()), digest_(digest_of(alg_)), input_(std::move(input)) {
    if (alg_.starts_with("HS")) {
      secret_ = key.secret();
      mac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
      if (!mac_) die("no HMAC");
      signature_ = key.sign(input_);
    } else {
      pkey_.reset(pkey_from_pem(key.public_pem()));
      signature_ = key.sign(input_, /*der=*/true);  // OpenSSL verifies DER ECDSA signatures
    }
    // The prepared variant: everything that does not depend on the message done once.
    if (mac_) {
      ready_mac_ = EVP_MAC_CTX_new(mac_);
      OSSL_PARAM params[] = {
          OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(digest_), 0),
          OSSL_PARAM_construct_end()};
      if (!ready_mac_ || EVP_MAC_init(ready_mac_, reinterpret_cast<const unsigned char*>(secret_.data()),
                                      secret_.size(), params) != 1) {
        die("cannot prepare the HMAC context");
      }
    } else {
      ready_ = EVP_MD_CTX_new();
      work_ = EVP_MD_CTX_new();
      if (!ready_ || !work_ || !init(ready_)) die("cannot prepare the verification context");
    }
  }
  ~RawVerifier() {
    EVP_MAC_CTX_free(ready_mac_);
    EVP_MAC_free(mac_);
    EVP_MD_CTX_free(ready_);
    EVP_MD_CTX_free(work_);
  }
  RawVerifier(const RawVerifier&) = delete;
  RawVerifier& operator=(const RawVerifier&) = delete;

  /// Everything per call, as a one-off verification does it.
  bool verify() const { return mac_ ? verify_hmac() : verify_asymmetric(); }

  /// From a context prepared once for the key: a copy of it, then the message. The floor for an
  /// EVP-based verifier (gatehouse verifies this way too).
  bool verify_prepared() {
    if (ready_mac_) {
      EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(ready_mac_);
      std::array<unsigned char, EVP_MAX_MD_SIZE> tag{};
      std::size_t len = 0;
      const bool ok = ctx &&
                      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(input_.data()), input_.size()) == 1 &&
                      EVP_MAC_final(ctx, tag.data(), &len, tag.size()) == 1 && len == signature_.size() &&
                      CRYPTO_memcmp(tag.data(), signature_.data(), len) == 0;
      EVP_MAC_CTX_free(ctx);
      return ok;
    }
    if (EVP_MD_CTX_copy_ex(work_, ready_) != 1) return false;
    EVP_MD_CTX_set_flags(work_, EVP_MD_CTX_FLAG_FINALISE);
    return digest_verify(work_);
  }

 private:
  bool init(EVP_MD_CTX* ctx) const {
    EVP_PKEY_CTX* pctx = nullptr;
    if (EVP_DigestVerifyInit_ex(ctx, &pctx, digest_, nullptr, nullptr, pkey_.get(), nullptr) != 1) return false;
    if (alg_.starts_with("PS")) {
      return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, digest_, nullptr) == 1;
    }
    if (alg_.starts_with("RS")) return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
    return true;
  }

  bool digest_verify(EVP_MD_CTX* ctx) const {
    return EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature_.data()), signature_.size(),
                            reinterpret_cast<const unsigned char*>(input_.data()), input_.size()) == 1;
  }

  bool verify_asymmetric() const {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const bool ok = ctx && init(ctx) && digest_verify(ctx);
    EVP_MD_CTX_free(ctx);
    return ok;
  }

  bool verify_hmac() const {
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac_);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(digest_), 0),
        OSSL_PARAM_construct_end()};
    std::array<unsigned char, EVP_MAX_MD_SIZE> tag{};
    std::size_t len = 0;
    bool ok = ctx &&
              EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(secret_.data()), secret_.size(), params) == 1 &&
              EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(input_.data()), input_.size()) == 1 &&
              EVP_MAC_final(ctx, tag.data(), &len, tag.size()) == 1 && len == signature_.size() &&
              CRYPTO_memcmp(tag.data(), signature_.data(), len) == 0;
    EVP_MAC_CTX_free(ctx);
    return ok;
  }

  std::string alg_;
  const char* digest_;
  std::string input_;
  std::string signature_;
  std::string secret_;
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey_;
  EVP_MAC* mac_ = nullptr;
  EVP_MAC_CTX* ready_mac_ = nullptr;
  EVP_MD_CTX* ready_ = nullptr;
  EVP_MD_CTX* work_ = nullptr;
};

// CPU time of this thread: other processes on a busy machine delay the loop but do not inflate
// it (openssl speed divides by CPU time too).
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Timing {
  long calls = 0;
  double cpu_seconds = 0;
  double rate() const { return cpu_seconds > 0 ? static_cast<double>(calls) / cpu_seconds : 0; }
};

// Runs `body` (which returns false on failure) in batches for `seconds` of CPU time, or at most
// four times that in wall-clock time on a machine too busy to give it the CPU.
template <class Body>
void measure(Timing& t, double seconds, long batch, Body&& body) {
  const auto wall_limit = Clock::now() + std::chrono::duration<double>(4 * seconds);
  const double start = thread_cpu_seconds();
  double now = start;
  do {
    for (long i = 0; i < batch; ++i) {
      if (!body()) die("a verification failed during the measurement");
    }
    t.calls += batch;
    now = thread_cpu_seconds();
  } while (now - start < seconds && Clock::now() < wall_limit);
  t.cpu_seconds += now - start;
}

struct Row {
  std::string alg;
  std::size_t token_bytes = 0, input_bytes = 0, payload_bytes = 0;
  Timing gatehouse, raw, prepared, hit;
};

auth::JwtVerifierOptions verifier_options(const test::TestKey& key, bool cache) {
  auth::JwtVerifierOptions o;
  o.algorithms = {key.alg()};
  o.issuers = {{kIssuer, auth::StaticKeySource::from_jwks(key.jwks("bench-key-1").dump())}};
  o.audiences = {kAudience};
  o.cache.enabled = cache;
  return o;
}

Row run_alg(const char* alg, double seconds) {
  Row row;
  row.alg = alg;
  const test::TestKey key = test::TestKey::generate(alg);
  const json header = {{"alg", alg}, {"typ", "JWT"}, {"kid", "bench-key-1"}};
  const std::string payload = realistic_claims().dump();
  const std::string token = test::make_token_text(key, header.dump(), payload);
  row.token_bytes = token.size();
  row.payload_bytes = payload.size();
  const std::string input = token.substr(0, token.rfind('.'));
  row.input_bytes = input.size();

  const auth::JwtVerifier uncached(verifier_options(key, false));
  const auth::JwtVerifier cached(verifier_options(key, true));
  RawVerifier raw(key, input);
  auto gh_once = [&] {
    auto r = uncached.try_verify_now(token);
    return r && r->ok();
  };
  auto hit_once = [&] {
    auto r = cached.try_verify_now(token);
    return r && r->ok();
  };
  auto raw_once = [&] { return raw.verify(); };
  auto prepared_once = [&] { return raw.verify_prepared(); };
  if (!gh_once()) {
    const auto r = uncached.try_verify_now(token);
    die(std::string(alg) + ": gatehouse refuses the benchmark token: " + (r ? r->detail() : "no result"));
  }
  if (!raw_once() || !prepared_once()) die(std::string(alg) + ": raw EVP refuses the benchmark signature");
  if (!hit_once() || cached.stats().cache_entries != 1) die(std::string(alg) + ": the token was not cached");

  // Batch sizes that keep clock reads negligible and slices short enough to alternate.
  const bool hmac = std::string_view(alg).starts_with("HS");
  const long batch = hmac ? 256 : 16;
  const double slice = seconds / kRounds;
  for (int round = 0; round < kRounds; ++round) {
    measure(row.gatehouse, slice, batch, gh_once);
    measure(row.raw, slice, batch, raw_once);
    measure(row.prepared, slice, batch, prepared_once);
  }
  const auto misses = cached.stats().cache_misses;  // the first call above
  measure(row.hit, std::min(seconds, 0.5), 1024, hit_once);
  if (cached.stats().cache_misses != misses) die(std::string(alg) + ": cache misses while measuring hits");
  return row;
}

std::string fmt_rate(double r) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f", r);
  std::string s = buf, out;
  const std::size_t first = s.size() % 3;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i != 0 && i >= first && (i - first) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  bool tsv = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--tsv") == 0) tsv = true;
    else die(std::string("unknown argument ") + argv[i] + " (usage: auth_bench [--tsv])");
  }
  double seconds = 1.0;
  if (const char* s = std::getenv("AUTH_BENCH_SECONDS")) {
    char* end = nullptr;
    seconds = std::strtod(s, &end);
    if (end == s || *end != '\0' || !(seconds >= 0.05 && seconds <= 600)) die("AUTH_BENCH_SECONDS must be in 0.05..600");
  }
  std::vector<const char*> algs(kAlgs.begin(), kAlgs.end());
  if (const char* s = std::getenv("AUTH_BENCH_ALGS"); s && *s) {
    algs.clear();
    std::istringstream in(s);
    std::string name;
    while (in >> name) {
      const auto it = std::find(kAlgs.begin(), kAlgs.end(), name);
      if (it == kAlgs.end()) die("unknown algorithm in AUTH_BENCH_ALGS: " + name);
      algs.push_back(*it);
    }
  }

  std::vector<Row> rows;
  for (const char* alg : algs) {
    rows.push_back(run_alg(alg, seconds));
    if (!tsv) std::fprintf(stderr, "auth_bench: %s done\n", alg);
  }

  if (tsv) {
    std::printf("alg\ttoken_bytes\tinput_bytes\tpayload_bytes\tgatehouse_per_s\traw_evp_per_s\tprepared_evp_per_s\thit_ns\n");
    for (const Row& r : rows) {
      std::printf("%s\t%zu\t%zu\t%zu\t%.1f\t%.1f\t%.1f\t%.1f\n", r.alg.c_str(), r.token_bytes, r.input_bytes,
                  r.payload_bytes, r.gatehouse.rate(), r.raw.rate(), r.prepared.rate(), 1e9 / r.hit.rate());
    }
    return 0;
  }
  std::printf("JWT verification, one thread, %.2f CPU s per algorithm and method, %s\n", seconds, OPENSSL_VERSION_TEXT);
  std::printf("token: %zu bytes (payload %zu bytes of JSON), signing input %zu bytes for RS256\n\n",
              rows.empty() ? 0 : rows[0].token_bytes, rows.empty() ? 0 : rows[0].payload_bytes,
              rows.empty() ? 0 : rows[0].input_bytes);
  std::printf("| alg | gatehouse verif/s | raw EVP verif/s | ratio | prepared EVP verif/s | ratio "
              "| gatehouse µs | prepared EVP µs | JWT work µs | cache hit ns |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Row& r : rows) {
    const double g = r.gatehouse.rate(), w = r.raw.rate(), p = r.prepared.rate();
    std::printf("| %s | %s | %s | %.2f | %s | %.2f | %.2f | %.2f | %.2f | %.0f |\n", r.alg.c_str(),
                fmt_rate(g).c_str(), fmt_rate(w).c_str(), g / w, fmt_rate(p).c_str(), g / p, 1e6 / g, 1e6 / p,
                1e6 / g - 1e6 / p, 1e9 / r.hit.rate());
  }
  return 0;
}
