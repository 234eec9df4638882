#include "gatehouse/auth/introspection_verifier.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <utility>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "auth/openid_discovery.hpp"
#include "auth/verified_token_cache.hpp"
#include "net/http_client.hpp"
#include "net/io_thread.hpp"
#include "net/stream.hpp"
#include "net/url.hpp"
#include "auth/verify_failure.hpp"
#include "util/text.hpp"

namespace gatehouse::auth {

using detail::printable;

namespace {

using json = nlohmann::json;
using CacheKey = VerifiedTokenCache::Key;
using detail::use_tuple;


// application/x-www-form-urlencoded: everything but unreserved characters percent-encoded.
std::string form_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() + 16);
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '-' || u == '.' ||
        u == '_' || u == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

std::string base64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  return out;
}


// Printable ASCII without spaces: anything else cannot be a token (RFC 6750 b64token and friends)
// and is not worth a call.
bool plausible_token(std::string_view t) {
  return !t.empty() && std::all_of(t.begin(), t.end(), detail::is_visible_ascii);
}

}  // namespace

struct IntrospectionVerifier::State : std::enable_shared_from_this<State> {
  State(IntrospectionVerifierOptions o, asio::io_context::executor_type ex)
      : options(std::move(o)), executor(ex), clients(ex, client_options(options)) {}

  static detail::HttpClientOptions client_options(const IntrospectionVerifierOptions& o) {
    detail::HttpClientOptions c;
    c.tls = o.tls;
    c.timeout = o.timeout;
    c.max_response_bytes = 256 * 1024;
    c.max_idle_connections = 32;
    return c;
  }

  struct Flight {
    explicit Flight(asio::io_context::executor_type ex) : done(ex, std::chrono::steady_clock::time_point::max()) {}
    asio::steady_timer done;
    bool finished = false;
    VerifyResult result;
  };

  const IntrospectionVerifierOptions options;
  const asio::io_context::executor_type executor;
  std::string authorization;  // "Basic ..." or ""
  std::unique_ptr<VerifiedTokenCache> cache;
  std::atomic<std::size_t> pending{0};
  std::atomic<std::uint64_t> calls{0}, failures{0};
  mutable std::atomic<std::uint64_t> cache_hits{0};

  // I/O thread only.
  detail::HttpClients clients;
  std::optional<detail::Url> endpoint;
  std::optional<detail::Url> discovery;
  std::shared_ptr<Flight> discovering;
  std::map<CacheKey, std::shared_ptr<Flight>> flights;
  std::chrono::steady_clock::time_point discovery_retry_at{};
  std::string discovery_error;
  bool stopped = false;

  double now() const noexcept {
    return std::chrono::duration<double>(options.clock->now().time_since_epoch()).count();
  }

  // The answer to a cached token, or nullopt when the entry is missing or stale.
  std::optional<VerifyResult> from_cache(const CacheKey& key) const {
    auto entry = cache->find(key);
    if (!entry) return std::nullopt;
    const double t = now();
    if (t >= entry->cached_until) {
      cache->erase(key);
      return std::nullopt;
    }
    cache_hits.fetch_add(1, std::memory_order_relaxed);
    if (entry->inactive) return token_failure(TokenError::inactive, "inactive (cached answer)");
    const double leeway = static_cast<double>(options.leeway.count());
    if (entry->exp && t >= *entry->exp + leeway) return token_failure(TokenError::expired, "expired at " + epoch_seconds_text(*entry->exp) + " (cached)");
    return VerifyResult(entry->claims);
  }

  // Judges an answer of the endpoint; caches what can be cached.
  VerifyResult judge(json answer, const CacheKey* key) {
    if (!answer.is_object()) return token_failure(TokenError::introspection_unavailable, "the answer is not a JSON object");
    const auto active = answer.find("active");
    if (active == answer.end() || !active->is_boolean()) {
      return token_failure(TokenError::introspection_unavailable, "the answer has no boolean \"active\"");
    }
    const double t = now();
    if (!active->get<bool>()) {
      if (key && options.cache.inactive.count() > 0) {
        VerifiedTokenCache::Entry e;
        e.inactive = true;
        e.cached_until = t + static_cast<double>(options.cache.inactive.count());
        cache->insert(*key, std::move(e));
      }
      return token_failure(TokenError::inactive, "the endpoint says inactive");
    }
    answer.erase("active");
    // RFC 7662 lets the endpoint describe any token; only access tokens may authenticate a request.
    if (const auto tt = answer.find("token_type"); tt != answer.end() && tt->is_string()) {
      const std::string type = detail::to_lower_ascii(tt->get_ref<const std::string&>());
      if (type.find("refresh") != std::string::npos) return token_failure(TokenError::wrong_type, "token_type " + printable(type));
    }
    std::optional<double> exp, nbf;
    for (const char* name : {"exp", "nbf", "iat"}) {
      const auto it = answer.find(name);
      if (it == answer.end()) continue;
      if (!it->is_number() || !std::isfinite(it->get<double>())) {
        return token_failure(TokenError::introspection_unavailable, std::string("\"") + name + "\" in the answer is not a number");
      }
      if (name[0] == 'e') exp = it->get<double>();
      if (name[0] == 'n') nbf = it->get<double>();
    }
    const double leeway = static_cast<double>(options.leeway.count());
    if (exp && t >= *exp + leeway) return token_failure(TokenError::expired, "expired at " + epoch_seconds_text(*exp));
    if (nbf && t < *nbf - leeway) return token_failure(TokenError::not_yet_valid, "not before " + epoch_seconds_text(*nbf));
    Claims claims(std::move(answer));
    if (!options.issuers.empty()) {
      const auto iss = claims.issuer();
      if (!iss || std::find(options.issuers.begin(), options.issuers.end(), *iss) == options.issuers.end()) {
        return token_failure(TokenError::wrong_issuer, "iss " + (iss ? printable(*iss) : std::string("missing")));
      }
    }
    if (!options.audiences.empty()) {
      const auto auds = claims.audiences();
      const bool match = std::any_of(auds.begin(), auds.end(), [&](const std::string& a) {
        return std::find(options.audiences.begin(), options.audiences.end(), a) != options.audiences.end();
      });
      if (!match) return token_failure(TokenError::wrong_audience, "aud does not name this service");
    }
    if (key) {
      VerifiedTokenCache::Entry e;
      e.claims = claims;
      e.exp = exp;
      e.cached_until = t + static_cast<double>(options.cache.max_active.count());
      if (exp) e.cached_until = std::min(e.cached_until, *exp + leeway);
      cache->insert(*key, std::move(e));
    }
    return VerifyResult(std::move(claims));
  }

  asio::awaitable<std::string> ensure_endpoint() {
    if (endpoint) co_return std::string();
    // After a failed discovery, requests fail fast for a while instead of each trying again.
    if (std::chrono::steady_clock::now() < discovery_retry_at) co_return discovery_error;
    if (discovering) {
      auto f = discovering;
      if (!f->finished) co_await f->done.async_wait(use_tuple);
      co_return endpoint ? std::string() : f->result.detail();
    }
    auto f = std::make_shared<Flight>(executor);
    discovering = f;
    json metadata;
    std::string error;
    try {
      error = co_await detail::fetch_discovery(clients.for_url(*discovery), *discovery, options.issuer, metadata);
      if (error.empty()) {
        error = detail::metadata_url(metadata, "introspection_endpoint", options.allow_plain_http, endpoint);
        if (!error.empty()) error = "discovery " + discovery->text() + ": " + error;
      }
    } catch (const std::exception& e) {
      error = "discovery " + discovery->text() + ": " + e.what();
    }
    if (!error.empty()) {
      discovery_error = error;
      discovery_retry_at = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    }
    f->result = token_failure(TokenError::introspection_unavailable, error);
    f->finished = true;
    f->done.cancel();
    discovering.reset();
    co_return error;
  }

  asio::awaitable<VerifyResult> call(std::string token, const CacheKey* key) {
    if (stopped) co_return token_failure(TokenError::introspection_unavailable, "shutting down");
    if (std::string error = co_await ensure_endpoint(); !error.empty()) {
      failures.fetch_add(1, std::memory_order_relaxed);
      co_return token_failure(TokenError::introspection_unavailable, error);
    }
    detail::HttpClient::Fields fields{{"Content-Type", "application/x-www-form-urlencoded"},
                                      {"Accept", "application/json"}};
    if (!authorization.empty()) fields.emplace_back("Authorization", authorization);
    std::string body = "token=" + form_encode(token) + "&token_type_hint=access_token";
    calls.fetch_add(1, std::memory_order_relaxed);
    detail::HttpReply reply =
        co_await clients.for_url(*endpoint).request("POST", endpoint->target, std::move(fields), std::move(body));
    if (!reply.ok() || reply.status != 200) {
      failures.fetch_add(1, std::memory_order_relaxed);
      co_return token_failure(TokenError::introspection_unavailable,
                     endpoint->text() + ": " + (reply.ok() ? "HTTP status " + std::to_string(reply.status) : reply.error));
    }
    VerifyResult r = judge(json::parse(reply.body, nullptr, false), key);
    if (r.error() == TokenError::introspection_unavailable) failures.fetch_add(1, std::memory_order_relaxed);
    co_return r;
  }

  // On the I/O thread: one call per distinct token at a time.
  static asio::awaitable<VerifyResult> introspect(std::shared_ptr<State> self, std::string token,
                                                  std::optional<CacheKey> key) {
    if (key) {
      if (auto it = self->flights.find(*key); it != self->flights.end()) {
        auto f = it->second;
        if (!f->finished) co_await f->done.async_wait(use_tuple);
        co_return f->result;
      }
    }
    std::shared_ptr<Flight> f;
    if (key) {
      f = std::make_shared<Flight>(self->executor);
      self->flights.emplace(*key, f);
    }
    VerifyResult r;
    try {
      r = co_await self->call(std::move(token), key ? &*key : nullptr);
    } catch (const std::exception& e) {
      // Waiters must be woken whatever happens, or they would wait forever.
      r = token_failure(TokenError::introspection_unavailable, std::string("unexpected error: ") + e.what());
    }
    if (f) {
      f->result = r;
      f->finished = true;
      f->done.cancel();
      self->flights.erase(*key);
    }
    co_return r;
  }

  void stop() {
    stopped = true;
    clients.close();
  }
};

IntrospectionVerifier::IntrospectionVerifier(IntrospectionVerifierOptions options) {
  if (options.endpoint.empty() == options.issuer.empty()) {
    throw std::invalid_argument("introspection: set exactly one of endpoint and issuer (discovery)");
  }
  if (options.timeout.count() <= 0 || options.max_pending == 0 || options.max_token_bytes == 0) {
    throw std::invalid_argument("introspection: timeout, max_pending and max_token_bytes must be positive");
  }
  if (!options.clock) throw std::invalid_argument("introspection: clock must not be null");
  std::string error;
  const bool discovery = options.endpoint.empty();
  const std::string& text = discovery ? options.issuer : options.endpoint;
  auto url = discovery ? detail::discovery_url(options.issuer, &error) : detail::Url::parse(text, &error);
  if (!url) throw std::invalid_argument("introspection: " + text + ": " + error);
  if (!url->tls && !options.allow_plain_http) throw std::invalid_argument("introspection: " + text + ": must be https");

  auto io = detail::IoThread::shared();
  state_ = std::make_shared<State>(std::move(options), io->executor());
  io_ = std::move(io);
  State& s = *state_;
  (discovery ? s.discovery : s.endpoint) = *url;
  try {
    s.clients.for_url(*url);  // builds the TLS context now: a bad CA file fails here
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("introspection: ") + e.what());
  }
  if (!s.options.client_id.empty() || !s.options.client_secret.empty()) {
    s.authorization = "Basic " + base64(form_encode(s.options.client_id) + ":" + form_encode(s.options.client_secret));
  }
  if (s.options.cache.enabled && s.options.cache.max_entries > 0) {
    std::array<unsigned char, 16> salt{};
    if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
      throw std::runtime_error("introspection: no randomness for the cache identity");
    }
    s.cache = std::make_unique<VerifiedTokenCache>(s.options.cache.max_entries, salt);
  }
}

IntrospectionVerifier::~IntrospectionVerifier() {
  asio::post(state_->executor, [s = state_] { s->stop(); });
}

std::optional<VerifyResult> IntrospectionVerifier::try_verify_now(std::string_view token) const {
  const State& s = *state_;
  if (token.size() > s.options.max_token_bytes) {
    return token_failure(TokenError::token_too_large, std::to_string(token.size()) + " bytes");
  }
  if (!plausible_token(token)) return token_failure(TokenError::malformed, "not a printable token");
  if (!s.cache) return std::nullopt;
  CacheKey key;
  if (!s.cache->key_for(token, key)) return std::nullopt;
  return s.from_cache(key);
}

asio::awaitable<VerifyResult> IntrospectionVerifier::verify(std::string_view token) const {
  // Copied here, before the coroutine frame exists, so the caller's buffer may go away.
  return verify_owned(state_, std::string(token), this);
}

asio::awaitable<VerifyResult> IntrospectionVerifier::verify_owned(std::shared_ptr<State> s, std::string token,
                                                                  const IntrospectionVerifier* self) {
  if (auto now = self->try_verify_now(token)) co_return std::move(*now);
  std::optional<CacheKey> key;
  if (s->cache) {
    CacheKey k;
    if (s->cache->key_for(token, k)) key = k;
  }
  // Counted here, on the worker, so that the cap holds before anything is queued.
  if (s->pending.fetch_add(1) >= s->options.max_pending) {
    s->pending.fetch_sub(1);
    co_return token_failure(TokenError::introspection_unavailable, "too many introspection calls in flight");
  }
  struct Release {
    State* s;
    ~Release() { s->pending.fetch_sub(1); }
  } release{s.get()};
  // No cancellation link: a cancel on the worker must not touch I/O-thread objects from there.
  co_return co_await asio::co_spawn(s->executor, State::introspect(s, std::move(token), key),
                                    asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
}

const IntrospectionVerifierOptions& IntrospectionVerifier::options() const noexcept { return state_->options; }

IntrospectionVerifierStats IntrospectionVerifier::stats() const {
  const State& s = *state_;
  return {s.calls.load(), s.failures.load(), s.cache_hits.load()};
}

}  // namespace gatehouse::auth
