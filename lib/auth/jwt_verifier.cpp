#include "gatehouse/auth/jwt_verifier.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <variant>
#include <vector>

#include <openssl/rand.h>

#include "auth/base64url.hpp"
#include "auth/jws_signature.hpp"
#include "auth/strict_json.hpp"
#include "auth/verified_token_cache.hpp"
#include "auth/verify_failure.hpp"
#include "util/text.hpp"

namespace gatehouse::auth {

using detail::printable;

namespace {

using json = nlohmann::json;
using CacheKey = VerifiedTokenCache::Key;

// A token without kid is tried against at most this many fitting keys: bounds the work an
// attacker can cause with one token.
constexpr std::size_t kMaxKeysTried = 3;

// Header parameters we refuse outright. jwk/jku/x5u/x5c let the token choose its own key; crit
// names extensions we would have to understand, and we understand none.
constexpr std::array<const char*, 5> kForbiddenHeaders{"jwk", "jku", "x5u", "x5c", "crit"};

std::uint32_t bit(JwsAlgorithm alg) noexcept { return 1u << static_cast<unsigned>(alg); }

// RFC 7515 section 4.1.9: compared case-insensitively, "application/" may be left out.
std::string normalize_typ(std::string_view typ) {
  std::string out(typ);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  });
  constexpr std::string_view kPrefix = "application/";
  if (out.size() > kPrefix.size() && out.compare(0, kPrefix.size(), kPrefix) == 0) out.erase(0, kPrefix.size());
  return out;
}



// A token split, decoded and matched to an issuer; no key involved yet.
struct ParsedToken {
  std::string_view signing_input;  // "header.payload" exactly as received
  std::string signature;
  JwsAlgorithm alg = JwsAlgorithm::rs256;
  std::optional<std::string> kid;
  std::size_t issuer = 0;
  json payload;
};

using Prepared = std::variant<VerifyResult, ParsedToken>;

// A header that passed every check, and what it says.
struct KnownHeader {
  std::string text;  // base64url, exactly as received
  JwsAlgorithm alg = JwsAlgorithm::rs256;
  std::optional<std::string> kid;
};

}  // namespace

struct JwtVerifier::Impl {
  JwtVerifierOptions options;
  std::uint32_t allowed = 0;
  std::optional<std::string> typ;
  double leeway = 0;
  double max_age = 0;
  std::unique_ptr<VerifiedTokenCache> cache;
  // Headers that passed every check, by their exact base64url text, with what they said. An
  // issuer's tokens share a handful of headers, and decoding and parsing one costs about 1 µs
  // (bench/auth_bench). What a header says depends only on its text and the fixed options.
  static constexpr std::size_t kHeaderMemoSize = 8;
  static constexpr std::size_t kHeaderMemoMaxBytes = 512;
  mutable std::mutex header_mutex;
  mutable std::vector<KnownHeader> header_memo;
  mutable std::size_t header_next = 0;

  explicit Impl(JwtVerifierOptions o);

  double now() const noexcept {
    return std::chrono::duration<double>(options.clock->now().time_since_epoch()).count();
  }
  std::optional<VerifyResult> lookup(const CacheKey& key) const;
  Prepared prepare(std::string_view token) const;
  std::optional<VerifyResult> read_header(std::string_view header_b64, ParsedToken& t) const;
  bool recall_header(std::string_view header_b64, ParsedToken& t) const;
  void remember_header(std::string_view header_b64, const ParsedToken& t) const;
  std::optional<VerifyResult> finish(ParsedToken& t, const JwkSet* keys, bool can_refresh,
                                     const CacheKey* cache_key) const;
  VerifyResult accept(ParsedToken& t, std::uint64_t generation, const CacheKey* cache_key) const;
  std::optional<VerifyResult> verify_now(std::string_view token, CacheKey& key, bool& keyed,
                                         std::optional<ParsedToken>& pending) const;
  asio::awaitable<VerifyResult> verify_owned(std::string token) const;
};

JwtVerifier::Impl::Impl(JwtVerifierOptions o) : options(std::move(o)) {
  auto invalid = [](const std::string& why) { throw std::invalid_argument("JwtVerifier: " + why); };
  if (options.algorithms.empty()) invalid("no algorithms configured");
  for (const auto& name : options.algorithms) {
    const auto alg = parse_jws_algorithm(name);
    if (!alg) invalid("unsupported algorithm " + printable(name));
    allowed |= bit(*alg);
  }
  if (options.issuers.empty()) invalid("no issuers configured");
  for (std::size_t i = 0; i < options.issuers.size(); ++i) {
    const auto& iss = options.issuers[i];
    if (iss.issuer.empty()) invalid("an issuer has an empty name");
    if (!iss.keys) invalid("issuer " + printable(iss.issuer) + " has no key source");
    for (std::size_t j = 0; j < i; ++j) {
      if (options.issuers[j].issuer == iss.issuer) invalid("issuer " + printable(iss.issuer) + " listed twice");
    }
  }
  for (const auto& aud : options.audiences) {
    if (aud.empty()) invalid("empty audience");
  }
  for (const auto& claim : options.required_claims) {
    if (claim.empty()) invalid("empty required claim name");
  }
  if (options.leeway.count() < 0) invalid("negative leeway");
  if (options.max_token_bytes == 0) invalid("max_token_bytes is 0");
  if (!options.clock) invalid("no clock");
  if (options.typ) {
    if (options.typ->empty()) invalid("empty typ");
    typ = normalize_typ(*options.typ);
  }
  leeway = static_cast<double>(options.leeway.count());
  max_age = static_cast<double>(std::max<std::int64_t>(0, options.cache.max_age.count()));
  if (options.cache.enabled && options.cache.max_entries > 0 && max_age > 0) {
    // A random identity per verifier: its cache keys can never match another verifier's.
    std::array<unsigned char, 16> salt{};
    if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
      throw std::runtime_error("JwtVerifier: no randomness for the cache identity");
    }
    cache = std::make_unique<VerifiedTokenCache>(options.cache.max_entries, salt);
  }
}

std::optional<VerifyResult> JwtVerifier::Impl::lookup(const CacheKey& key) const {
  auto entry = cache->find(key);
  if (!entry) return std::nullopt;
  const double t = now();
  const KeySource& source = *options.issuers[entry->issuer].keys;
  // Keys rotated (a key may have been withdrawn) or the entry is old: verify again.
  if (source.generation() != entry->key_generation || t >= entry->cached_until) {
    cache->erase(key);
    return std::nullopt;
  }
  if (entry->exp && t >= *entry->exp + leeway) {
    cache->erase(key);
    return token_failure(TokenError::expired, "expired at " + epoch_seconds_text(*entry->exp) + " (cached)");
  }
  if (entry->nbf && t < *entry->nbf - leeway) {
    return token_failure(TokenError::not_yet_valid, "not before " + epoch_seconds_text(*entry->nbf) + " (cached)");
  }
  return VerifyResult(std::move(entry->claims));
}

// Sets t.alg and t.kid, or says why the header is refused.
std::optional<VerifyResult> JwtVerifier::Impl::read_header(std::string_view header_b64, ParsedToken& t) const {
  std::string text;
  const char* why = nullptr;
  if (!base64url_decode(header_b64, text)) return token_failure(TokenError::malformed, "header is not base64url");
  json header;
  if (!parse_strict_json(text, header, why)) return token_failure(TokenError::malformed, std::string("header: ") + why);
  if (!header.is_object()) return token_failure(TokenError::malformed, "header is not a JSON object");

  const auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string()) return token_failure(TokenError::malformed, "header has no alg string");
  const std::string& alg_name = alg->get_ref<const std::string&>();
  const auto parsed_alg = parse_jws_algorithm(alg_name);
  if (!parsed_alg || !(allowed & bit(*parsed_alg))) {
    return token_failure(TokenError::unsupported_algorithm, "alg " + printable(alg_name) + " is not accepted");
  }
  t.alg = *parsed_alg;
  for (const char* name : kForbiddenHeaders) {
    if (header.contains(name)) return token_failure(TokenError::forbidden_header, std::string("header has \"") + name + "\"");
  }
  // RFC 7797 unencoded payloads would change what the signature covers.
  if (const auto b64 = header.find("b64"); b64 != header.end() && *b64 != true) {
    return token_failure(TokenError::forbidden_header, "header has \"b64\"");
  }
  const auto token_typ = header.find("typ");
  if (token_typ != header.end() && !token_typ->is_string()) return token_failure(TokenError::malformed, "typ is not a string");
  if (typ) {
    if (token_typ == header.end()) return token_failure(TokenError::wrong_type, "header has no typ");
    const std::string& value = token_typ->get_ref<const std::string&>();
    if (normalize_typ(value) != *typ) return token_failure(TokenError::wrong_type, "typ " + printable(value));
  }
  if (const auto kid = header.find("kid"); kid != header.end()) {
    if (!kid->is_string()) return token_failure(TokenError::malformed, "kid is not a string");
    t.kid = kid->get<std::string>();
  }
  return std::nullopt;
}

bool JwtVerifier::Impl::recall_header(std::string_view header_b64, ParsedToken& t) const {
  std::lock_guard lock(header_mutex);
  for (const KnownHeader& known : header_memo) {
    if (known.text == header_b64) {
      t.alg = known.alg;
      t.kid = known.kid;
      return true;
    }
  }
  return false;
}

void JwtVerifier::Impl::remember_header(std::string_view header_b64, const ParsedToken& t) const {
  if (header_b64.empty() || header_b64.size() > kHeaderMemoMaxBytes) return;
  KnownHeader entry{std::string(header_b64), t.alg, t.kid};
  std::lock_guard lock(header_mutex);
  if (header_memo.size() < kHeaderMemoSize) {
    header_memo.push_back(std::move(entry));
  } else {
    header_memo[header_next] = std::move(entry);
    header_next = (header_next + 1) % kHeaderMemoSize;
  }
}

Prepared JwtVerifier::Impl::prepare(std::string_view token) const {
  const std::size_t dot1 = token.find('.');
  const std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) return token_failure(TokenError::malformed, "not three segments");
  if (token.find('.', dot2 + 1) != std::string_view::npos) {
    return token_failure(TokenError::malformed, "more than three segments (JWE?)");
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_b64 = token.substr(dot2 + 1);

  ParsedToken t;
  if (!recall_header(header_b64, t)) {
    if (auto refused = read_header(header_b64, t)) return std::move(*refused);
    remember_header(header_b64, t);
  }

  std::string text;
  const char* why = nullptr;
  if (!base64url_decode(payload_b64, text)) return token_failure(TokenError::malformed, "payload is not base64url");
  if (!parse_strict_json(text, t.payload, why)) return token_failure(TokenError::malformed, std::string("payload: ") + why);
  if (!t.payload.is_object()) return token_failure(TokenError::malformed, "payload is not a JSON object");

  // The issuer picks the key set: a key of one issuer never verifies another issuer's tokens.
  const auto iss = t.payload.find("iss");
  if (iss == t.payload.end()) return token_failure(TokenError::missing_claim, "no iss");
  if (!iss->is_string()) return token_failure(TokenError::malformed, "iss is not a string");
  const std::string& iss_value = iss->get_ref<const std::string&>();
  const auto& issuers = options.issuers;
  const auto match = std::find_if(issuers.begin(), issuers.end(),
                                  [&](const JwtIssuer& i) { return i.issuer == iss_value; });
  if (match == issuers.end()) return token_failure(TokenError::wrong_issuer, "iss " + printable(iss_value));
  t.issuer = static_cast<std::size_t>(match - issuers.begin());

  if (!base64url_decode(signature_b64, t.signature)) {
    return token_failure(TokenError::malformed, "signature is not base64url");
  }
  t.signing_input = token.substr(0, dot2);
  return t;
}

std::optional<VerifyResult> JwtVerifier::Impl::finish(ParsedToken& t, const JwkSet* keys, bool can_refresh,
                                                      const CacheKey* cache_key) const {
  if (!keys) {
    if (can_refresh) return std::nullopt;
    return token_failure(TokenError::key_source_unavailable, "issuer has no keys");
  }
  bool verified = false;
  if (t.kid) {
    const JsonWebKey* key = keys->find(*t.kid, t.alg);
    if (!key) {
      if (!keys->contains_kid(*t.kid)) {
        if (can_refresh) return std::nullopt;
        return token_failure(TokenError::unknown_key, "no key with kid " + printable(*t.kid));
      }
      return token_failure(TokenError::unknown_key,
                  "key " + printable(*t.kid) + " cannot verify " + std::string(to_string(t.alg)));
    }
    verified = verify_jws_signature(t.alg, *key, t.signing_input, t.signature);
  } else {
    std::size_t tried = 0;
    for (const JsonWebKey& key : keys->keys()) {
      if (!key.can_verify(t.alg)) continue;
      ++tried;
      if (verify_jws_signature(t.alg, key, t.signing_input, t.signature)) {
        verified = true;
        break;
      }
      if (tried == kMaxKeysTried) break;
    }
    if (tried == 0) {
      if (can_refresh) return std::nullopt;
      return token_failure(TokenError::unknown_key, "no key can verify " + std::string(to_string(t.alg)));
    }
  }
  if (!verified) return token_failure(TokenError::bad_signature, "signature does not verify");
  return accept(t, keys->generation(), cache_key);
}

VerifyResult JwtVerifier::Impl::accept(ParsedToken& t, std::uint64_t generation,
                                       const CacheKey* cache_key) const {
  const json& p = t.payload;
  std::optional<double> exp, nbf, iat;
  for (auto [name, out] : {std::pair{"exp", &exp}, std::pair{"nbf", &nbf}, std::pair{"iat", &iat}}) {
    const auto it = p.find(name);
    if (it == p.end()) continue;
    if (!it->is_number()) return token_failure(TokenError::malformed, std::string(name) + " is not a number");
    const double v = it->get<double>();
    if (!std::isfinite(v)) return token_failure(TokenError::malformed, std::string(name) + " is not finite");
    *out = v;
  }
  const double t_now = now();
  if (!exp && options.require_exp) return token_failure(TokenError::missing_claim, "no exp");
  if (exp && t_now >= *exp + leeway) return token_failure(TokenError::expired, "expired at " + epoch_seconds_text(*exp));
  if (nbf && t_now < *nbf - leeway) return token_failure(TokenError::not_yet_valid, "not before " + epoch_seconds_text(*nbf));
  if (iat && *iat > t_now + leeway) {
    return token_failure(TokenError::not_yet_valid, "issued in the future at " + epoch_seconds_text(*iat));
  }
  for (const char* name : {"sub", "jti"}) {
    const auto it = p.find(name);
    if (it != p.end() && !it->is_string()) return token_failure(TokenError::malformed, std::string(name) + " is not a string");
  }

  const auto aud = p.find("aud");
  bool aud_match = false;
  if (aud != p.end()) {
    auto wanted = [&](const json& v) {
      const auto& s = v.get_ref<const std::string&>();
      return std::find(options.audiences.begin(), options.audiences.end(), s) != options.audiences.end();
    };
    if (aud->is_string()) {
      aud_match = wanted(*aud);
    } else if (aud->is_array()) {
      for (const auto& v : *aud) {
        if (!v.is_string()) return token_failure(TokenError::malformed, "aud holds a non-string");
        aud_match = aud_match || wanted(v);
      }
    } else {
      return token_failure(TokenError::malformed, "aud is neither a string nor an array");
    }
  }
  if (!options.audiences.empty()) {
    if (aud == p.end()) return token_failure(TokenError::missing_claim, "no aud");
    if (!aud_match) return token_failure(TokenError::wrong_audience, "aud " + printable(aud->dump()));
  }
  for (const auto& name : options.required_claims) {
    const auto it = p.find(name);
    if (it == p.end() || it->is_null()) return token_failure(TokenError::missing_claim, "no " + printable(name));
  }

  Claims claims(std::move(t.payload));
  if (cache && cache_key) {
    cache->insert(*cache_key, VerifiedTokenCache::Entry{claims, exp, nbf, t_now + max_age, t.issuer, generation});
  }
  return claims;
}

// Everything that needs no I/O. Returns nullopt with `pending` set when the issuer's keys must be
// refreshed first.
std::optional<VerifyResult> JwtVerifier::Impl::verify_now(std::string_view token, CacheKey& key, bool& keyed,
                                                          std::optional<ParsedToken>& pending) const {
  if (token.size() > options.max_token_bytes) {
    return token_failure(TokenError::token_too_large, std::to_string(token.size()) + " bytes");
  }
  keyed = cache && cache->key_for(token, key);
  if (keyed) {
    if (auto hit = lookup(key)) return hit;
  }
  Prepared prepared = prepare(token);
  if (auto* result = std::get_if<VerifyResult>(&prepared)) return std::move(*result);
  ParsedToken& t = std::get<ParsedToken>(prepared);
  const KeySource& source = *options.issuers[t.issuer].keys;
  const auto keys = source.current();
  auto result = finish(t, keys.get(), source.can_refresh(), keyed ? &key : nullptr);
  if (!result) pending.emplace(std::move(t));
  return result;
}

asio::awaitable<VerifyResult> JwtVerifier::Impl::verify_owned(std::string token) const {
  std::optional<ParsedToken> pending;
  CacheKey key{};
  bool keyed = false;
  std::shared_ptr<const JwkSet> keys;
  std::string refresh_error;
  try {
    if (auto result = verify_now(token, key, keyed, pending)) co_return std::move(*result);
    const KeySource& source = *options.issuers[pending->issuer].keys;
    keys = co_await source.refresh_for_unknown_kid(pending->kid.value_or(std::string{}));
  } catch (const std::exception& e) {
    if (!pending) co_return token_failure(TokenError::internal, e.what());
    refresh_error = e.what();
  }
  if (!keys) {
    co_return token_failure(TokenError::key_source_unavailable,
                   refresh_error.empty() ? "issuer keys unavailable" : "key refresh failed: " + refresh_error);
  }
  try {
    co_return *finish(*pending, keys.get(), /*can_refresh=*/false, keyed ? &key : nullptr);
  } catch (const std::exception& e) {
    co_return token_failure(TokenError::internal, e.what());
  }
}

JwtVerifier::JwtVerifier(JwtVerifierOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

JwtVerifier::~JwtVerifier() = default;

asio::awaitable<VerifyResult> JwtVerifier::verify(std::string_view token) const {
  // Copied here, before the coroutine frame exists, so the caller's buffer may go away.
  return impl_->verify_owned(std::string(token));
}

std::optional<VerifyResult> JwtVerifier::try_verify_now(std::string_view token) const {
  try {
    CacheKey key{};
    bool keyed = false;
    std::optional<ParsedToken> pending;
    return impl_->verify_now(token, key, keyed, pending);
  } catch (const std::exception& e) {
    return token_failure(TokenError::internal, e.what());
  }
}

const JwtVerifierOptions& JwtVerifier::options() const noexcept { return impl_->options; }

JwtVerifierStats JwtVerifier::stats() const {
  JwtVerifierStats stats;
  if (impl_->cache) {
    const VerifiedTokenCacheStats s = impl_->cache->stats();
    stats.cache_hits = s.hits;
    stats.cache_misses = s.misses;
    stats.cache_entries = s.entries;
  }
  return stats;
}

}  // namespace gatehouse::auth
