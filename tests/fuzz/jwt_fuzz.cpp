// libFuzzer target: arbitrary bytes as a bearer token through JwtVerifier, on the synchronous path
// (try_verify_now) and on the coroutine (verify) driven by a local io_context.
//
// Input: one flags byte, then the token. The digits '0'..'7' make readable flag bytes in seeds.
//   bit 0  the verifier with the verified-token cache (else one without)
//   bit 1  the strict verifier: typ "at+jwt", "sub" and "scope" required, max_token_bytes 4096
//   bit 2  re-sign: replace the signature with a valid one from the fuzzer's own key for the
//          header's alg, so that mutated headers and payloads get past the signature check
//
// Issuers: "https://issuer.example" has static keys (RSA "rsa", RSA pinned to PS256 "rsa-ps",
// EC P-256 "ec", Ed25519 "ed", HMAC "hs"). "https://refresh.example" has only "hs" at hand and
// gets the others from a refresh; "https://empty.example" has no keys until a refresh. A refresh
// for kid "unavailable" yields no keys and for kid "throws" throws. The clock is fixed at
// 1700000000. JWT_FUZZ_VERBOSE=1 prints the outcome of each input.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "auth/base64url.hpp"
#include "gatehouse/auth/claims.hpp"
#include "gatehouse/auth/jwk.hpp"
#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/auth/key_source.hpp"
#include "gatehouse/auth/token_error.hpp"
#include "support/jwt_signer.hpp"

namespace {

namespace auth = gatehouse::auth;
using gatehouse::test::TestKey;

constexpr std::int64_t kNow = 1'700'000'000;
constexpr const char* kStaticIssuer = "https://issuer.example";
constexpr const char* kRefreshIssuer = "https://refresh.example";
constexpr const char* kEmptyIssuer = "https://empty.example";
constexpr const char* kAudience = "api://fuzz";

[[noreturn]] void invariant_failed(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "jwt_fuzz: invariant failed: %s %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

class FixedClock final : public gatehouse::Clock {
 public:
  time_point now() const noexcept override { return time_point{std::chrono::seconds{kNow}}; }
};

// A remote-like key source without the network: current() may lack keys, and a refresh really
// suspends (one trip through the executor) before it answers.
class RefreshingKeySource final : public auth::KeySource {
 public:
  RefreshingKeySource(std::shared_ptr<const auth::JwkSet> at_hand, std::shared_ptr<const auth::JwkSet> refreshed)
      : at_hand_(std::move(at_hand)), refreshed_(std::move(refreshed)) {}

  std::shared_ptr<const auth::JwkSet> current() const override { return at_hand_; }

  asio::awaitable<std::shared_ptr<const auth::JwkSet>> refresh_for_unknown_kid(std::string kid) const override {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    if (kid == "unavailable") co_return nullptr;
    if (kid == "throws") throw std::runtime_error("fetch failed");
    co_return refreshed_;
  }

 private:
  std::shared_ptr<const auth::JwkSet> at_hand_;
  std::shared_ptr<const auth::JwkSet> refreshed_;
};

struct Fixture {
  FixedClock clock;
  TestKey rsa = TestKey::generate("RS256");
  TestKey ec = TestKey::generate("ES256");
  TestKey ed = TestKey::generate("EdDSA");
  TestKey hs = TestKey::generate("HS256");  // 64 bytes: serves HS256, HS384 and HS512
  // [cache][strict]
  std::unique_ptr<auth::JwtVerifier> verifiers[2][2];
  // JWT_FUZZ_VERBOSE=1 prints each outcome (for reading a reproducer or a seed's fate).
  bool verbose = std::getenv("JWT_FUZZ_VERBOSE") != nullptr;

  Fixture() {
    const auto jwk = [](const nlohmann::json& j) { return auth::JsonWebKey::from_json(j); };
    std::vector<auth::JsonWebKey> all{jwk(rsa.public_jwk("rsa", false)), jwk(rsa.as("PS256").public_jwk("rsa-ps")),
                                      jwk(ec.public_jwk("ec", false)), jwk(ed.public_jwk("ed", false)),
                                      jwk(hs.public_jwk("hs", false))};
    const auto full = std::make_shared<const auth::JwkSet>(all);
    const auto hs_only = std::make_shared<const auth::JwkSet>(std::vector{all.back()});
    const auto static_keys = std::make_shared<auth::StaticKeySource>(*full);
    const auto refreshing = std::make_shared<RefreshingKeySource>(hs_only, full);
    const auto empty = std::make_shared<RefreshingKeySource>(nullptr, full);
    for (int cache = 0; cache < 2; ++cache) {
      for (int strict = 0; strict < 2; ++strict) {
        auth::JwtVerifierOptions o;
        o.algorithms = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256",
                        "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"};
        o.issuers = {{kStaticIssuer, static_keys}, {kRefreshIssuer, refreshing}, {kEmptyIssuer, empty}};
        o.audiences = {kAudience, "api://other"};
        o.clock = &clock;
        o.cache.enabled = cache == 1;
        o.cache.max_entries = 64;  // small, so that eviction happens too
        if (strict == 1) {
          o.typ = "at+jwt";
          o.required_claims = {"sub", "scope"};
          o.max_token_bytes = 4096;
        }
        verifiers[cache][strict] = std::make_unique<auth::JwtVerifier>(std::move(o));
      }
    }
  }

  // The signing key for a JOSE alg name; none for ES384, ES512 and unknown names.
  std::optional<TestKey> key_for(std::string_view alg) const {
    if (alg.starts_with("RS") || alg.starts_with("PS")) {
      if (alg.size() == 5 && (alg.ends_with("256") || alg.ends_with("384") || alg.ends_with("512"))) {
        return rsa.as(alg);
      }
      return std::nullopt;
    }
    if (alg == "HS256" || alg == "HS384" || alg == "HS512") return hs.as(alg);
    if (alg == "ES256") return ec;
    if (alg == "EdDSA") return ed;
    return std::nullopt;
  }

  // Replaces the third segment with a valid signature over the first two, when the header names
  // an alg the fuzzer has a key for; anything from a third dot on is kept.
  std::string resign(std::string token) const {
    const std::size_t dot1 = token.find('.');
    if (dot1 == std::string::npos) return token;
    const std::size_t dot2 = token.find('.', dot1 + 1);
    if (dot2 == std::string::npos) return token;
    const auto header_text = auth::base64url_decode(std::string_view(token).substr(0, dot1));
    if (!header_text) return token;
    const auto header = nlohmann::json::parse(*header_text, nullptr, /*allow_exceptions=*/false);
    if (!header.is_object()) return token;
    const auto alg = header.find("alg");
    if (alg == header.end() || !alg->is_string()) return token;
    const auto key = key_for(alg->get_ref<const std::string&>());
    if (!key) return token;
    const std::size_t dot3 = token.find('.', dot2 + 1);
    const std::string input = token.substr(0, dot2);
    return input + "." + auth::base64url_encode(key->sign(input)) +
           (dot3 == std::string::npos ? std::string{} : token.substr(dot3));
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

bool printable_ascii(std::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
  }
  return true;
}

// What every result must look like, whatever the input.
void check_result(const auth::VerifyResult& r) {
  if (r.ok()) {
    if (r.error()) invariant_failed("ok result with an error code");
    const auth::Claims& c = r.value();
    const auto iss = c.issuer();
    if (!iss || (*iss != kStaticIssuer && *iss != kRefreshIssuer && *iss != kEmptyIssuer)) {
      invariant_failed("accepted a token of an unknown issuer");
    }
    if (!c.expires_at() || *c.expires_at() < std::chrono::system_clock::time_point{std::chrono::seconds{kNow - 30}}) {
      invariant_failed("accepted a token without exp or an expired one");
    }
    bool audience = false;
    for (const auto& a : c.audiences()) audience = audience || a == kAudience || a == "api://other";
    if (!audience) invariant_failed("accepted a token for another audience");
    // The accessors a middleware uses must cope with whatever the payload holds.
    static_cast<void>(c.subject());
    static_cast<void>(c.scopes());
    static_cast<void>(c.has_scope("read"));
    static_cast<void>(c.not_before());
    static_cast<void>(c.issued_at());
    static_cast<void>(c.integer("exp"));
    static_cast<void>(c.at("/realm_access/roles/0").strings());
    static_cast<void>(c.at("/a~1b/~0c").dump());
    static_cast<void>(c.dump());
    return;
  }
  const std::error_code e = r.error();
  if (e.category() != auth::token_category()) invariant_failed("error outside the gatehouse.token category");
  if (e.value() < static_cast<int>(auth::TokenError::malformed) ||
      e.value() > static_cast<int>(auth::TokenError::internal)) {
    invariant_failed("error value out of range");
  }
  // A client's bytes must never look like the gateway's own failure.
  if (e == auth::TokenError::internal) invariant_failed("internal error:", r.detail());
  // Details go to the log: short, and escaped.
  if (r.detail().size() > 400 || !printable_ascii(r.detail())) invariant_failed("unsafe detail:", r.detail());
}

bool same(const auth::VerifyResult& a, const auth::VerifyResult& b) {
  if (a.ok() != b.ok()) return false;
  if (!a.ok()) return a.error() == b.error();
  return a.value().dump() == b.value().dump();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  static_cast<void>(fixture());  // key generation happens once, before the first input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const Fixture& f = fixture();
  const unsigned flags = data[0];
  std::string token(reinterpret_cast<const char*>(data + 1), size - 1);
  if (flags & 4u) token = f.resign(std::move(token));
  const auth::JwtVerifier& v = *f.verifiers[flags & 1u][(flags >> 1) & 1u];

  const std::optional<auth::VerifyResult> now = v.try_verify_now(token);
  if (now) check_result(*now);
  const auth::VerifyResult later = gatehouse::test::run_verify(v, token);  // exceptions escape: a crash
  if (f.verbose) {
    const std::string outcome = later.ok() ? "ok " + later.value().dump()
                                           : later.error().message() + ": " + later.detail();
    std::fprintf(stderr, "jwt_fuzz: flags %u, %s: %s\n", flags & 7u, now ? "decided now" : "async",
                 outcome.c_str());
  }
  check_result(later);
  // Where the synchronous path decides, the coroutine agrees.
  if (now && !same(*now, later)) invariant_failed("try_verify_now and verify disagree");

  if (flags & 1u) {
    // Again, now possibly from the cache: the same answer, and for static keys the very same claims.
    const std::optional<auth::VerifyResult> again = v.try_verify_now(token);
    if (!again) {
      if (now) invariant_failed("decided once, then not");
      return 0;
    }
    check_result(*again);
    if (!same(*again, later)) invariant_failed("a repeated verification changed its answer");
    if (later.ok() && later.value().issuer() == kStaticIssuer && !again->value().same_payload(later.value())) {
      invariant_failed("a verified token with static keys was not served from the cache");
    }
  }
  return 0;
}
