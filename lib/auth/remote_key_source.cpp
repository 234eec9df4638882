#include "gatehouse/auth/remote_key_source.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <utility>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "auth/openid_discovery.hpp"
#include "net/http_client.hpp"
#include "net/io_thread.hpp"
#include "net/stream.hpp"
#include "net/url.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

namespace gatehouse::auth {
namespace {

using steady = std::chrono::steady_clock;
using detail::use_tuple;

std::int64_t ticks(steady::time_point t) noexcept { return t.time_since_epoch().count(); }

// Requests that may wait for one fetch at once; more are answered with the current keys at once,
// so a flood of made-up kids during a slow fetch cannot pile up coroutines on the I/O thread.
constexpr std::size_t kMaxWaiting = 1024;

// Cache-Control max-age in seconds; no-store/no-cache count as 0 (then min_refresh applies).
std::optional<std::int64_t> max_age(std::string_view cc) {
  std::optional<std::int64_t> out;
  while (!cc.empty()) {
    const auto comma = cc.find(',');
    const std::string lower = detail::to_lower_ascii(detail::trim_ows(cc.substr(0, comma)));
    cc = comma == std::string_view::npos ? std::string_view() : cc.substr(comma + 1);
    if (lower == "no-store" || lower == "no-cache") return 0;
    if (lower.rfind("max-age=", 0) == 0) {
      std::string_view v = std::string_view(lower).substr(8);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      std::int64_t n = 0;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec == std::errc() && end == v.data() + v.size() && n >= 0) out = n;
      else if (ec == std::errc::result_out_of_range) out = std::numeric_limits<std::int64_t>::max();
    }
  }
  return out;
}

}  // namespace

// Everything but the atomics and the stats block runs on the I/O thread, so fetch bookkeeping
// needs no locks. Workers read `keys` (an atomic shared_ptr) and the rate-cap atomics only.
struct RemoteKeySource::State : std::enable_shared_from_this<State> {
  State(RemoteKeySourceOptions o, asio::io_context::executor_type ex)
      : options(std::move(o)),
        executor(ex),
        clients(ex, client_options(options)),
        refresh_timer(ex),
        rng(std::random_device{}()) {}

  static detail::HttpClientOptions client_options(const RemoteKeySourceOptions& o) {
    detail::HttpClientOptions c;
    c.tls = o.tls;
    c.timeout = o.fetch_timeout;
    c.max_response_bytes = o.max_document_bytes;
    c.max_idle_connections = 2;
    return c;
  }

  // A fetch others can wait for: they wait on `done`, which the fetcher cancels when finished.
  struct Flight {
    explicit Flight(asio::io_context::executor_type ex) : done(ex, steady::time_point::max()) {}
    asio::steady_timer done;
    bool finished = false;
    steady::duration next{};  // the fetch's verdict: when to refresh or retry
  };

  const RemoteKeySourceOptions options;
  const asio::io_context::executor_type executor;

  std::atomic<std::shared_ptr<const JwkSet>> keys{};
  std::atomic<std::uint64_t> generation{0};
  std::atomic<bool> fetching{false};
  std::atomic<std::int64_t> unknown_kid_not_before{0};  // steady ticks
  std::atomic<std::size_t> waiting{0};                   // requests in refresh_for_unknown_kid

  // I/O thread only.
  std::optional<detail::Url> jwks_url;   // configured, or found by discovery
  std::optional<detail::Url> discovery;  // when configured by issuer
  detail::HttpClients clients;
  asio::steady_timer refresh_timer;
  std::shared_ptr<Flight> flight;
  std::string last_document;
  unsigned failures_in_row = 0;
  bool stopped = false;
  std::minstd_rand rng;

  mutable std::mutex stats_mutex;
  mutable std::condition_variable first_done_cv;
  bool first_done = false;
  RemoteKeySourceStats stats;

  // Never throws: a throwing logger must not stop key refreshes.
  void log(LogLevel level, const std::string& line) const noexcept { detail::log(options.logger, level, line); }
  std::string name() const {
    return jwks_url ? jwks_url->text() : (discovery ? discovery->text() : std::string("key source"));
  }

  // One fetch: discovery first if still needed, then the JWKS. Never throws; returns when to
  // refresh (or retry) next.
  asio::awaitable<steady::duration> fetch() {
    std::string error;
    std::chrono::seconds next = options.default_refresh;
    try {
      co_await fetch_document(error, next);
    } catch (const std::exception& e) {
      error = std::string("unexpected error: ") + e.what();
    }
    std::string line;
    LogLevel level = LogLevel::warning;
    {
      std::lock_guard lock(stats_mutex);
      ++stats.fetches;
      stats.jwks_uri = jwks_url ? jwks_url->text() : std::string();
      if (auto set = keys.load()) stats.keys = set->size();
      if (!error.empty()) {
        ++stats.failures;
        stats.last_error = error;
        line = name() + ": fetch failed: " + error +
               (stats.keys ? " (the last good keys stay in use)" : " (no keys yet: tokens are refused)");
        if (!stats.keys) level = LogLevel::error;
      }
      first_done = true;
    }
    first_done_cv.notify_all();
    if (error.empty()) {
      failures_in_row = 0;
      co_return next;
    }
    log(level, line);  // outside the lock: a logger may call stats()
    // Exponential backoff with +-20% jitter, so that many gateways do not retry in step.
    const double base = std::min<double>(static_cast<double>(options.retry_max.count()),
                                         static_cast<double>(options.retry_min.count()) *
                                             static_cast<double>(1u << std::min(failures_in_row, 20u)));
    ++failures_in_row;
    const double jitter = std::uniform_real_distribution<double>(0.8, 1.2)(rng);
    co_return std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(std::max(0.1, base * jitter)));
  }

  asio::awaitable<void> fetch_document(std::string& error, std::chrono::seconds& next) {
    if (!jwks_url) {
      nlohmann::json metadata;
      error = co_await detail::fetch_discovery(clients.for_url(*discovery), *discovery, options.issuer, metadata);
      if (error.empty()) {
        error = detail::metadata_url(metadata, "jwks_uri", options.allow_plain_http, jwks_url);
        if (!error.empty()) error = "discovery " + discovery->text() + ": " + error;
      }
    }
    if (error.empty() && !stopped) {
      // Built outside the co_await: g++ 12 miscompiles initializer lists inside one.
      detail::HttpClient::Fields fields{{"Accept", "application/jwk-set+json, application/json"}};
      detail::HttpReply reply = co_await clients.for_url(*jwks_url).request("GET", jwks_url->target, std::move(fields));
      if (!reply.ok()) {
        error = reply.error;
      } else if (reply.status != 200) {
        error = "HTTP status " + std::to_string(reply.status);
      } else if (reply.body != last_document || !keys.load()) {
        try {
          auto set = std::make_shared<const JwkSet>(JwkSet::parse(reply.body));
          if (set->empty()) {
            error = "the document holds no usable key";
            for (const auto& why : set->skipped()) error += "; " + why;
          } else {
            for (const auto& why : set->skipped()) log(LogLevel::warning, name() + ": key left out: " + why);
            const bool first = !keys.load();
            generation.store(set->generation(), std::memory_order_release);
            keys.store(set);
            last_document = std::move(reply.body);
            log(LogLevel::info,
                name() + (first ? ": loaded " : ": keys changed, now ") + std::to_string(set->size()) + " key(s)");
          }
        } catch (const std::exception& e) {
          error = std::string("invalid JWKS document: ") + e.what();
        }
      }
      if (error.empty()) {
        if (const auto cc = reply.headers.get("cache-control")) {
          if (const auto age = max_age(*cc)) {
            next = std::chrono::seconds(std::clamp<std::int64_t>(*age, options.min_refresh.count(),
                                                                 options.max_refresh.count()));
          }
        }
      }
    }
  }

  // Runs a fetch, or joins the one in progress. Returns when to refresh (or retry) next.
  asio::awaitable<steady::duration> fetch_once() {
    if (flight) {
      auto f = flight;
      if (!f->finished) co_await f->done.async_wait(use_tuple);
      co_return f->next;
    }
    auto f = std::make_shared<Flight>(executor);
    flight = f;
    fetching.store(true);
    const auto started = steady::now();
    steady::duration delay = co_await fetch();
    // Tokens with unknown kids may fetch again after the interval, or after the backoff.
    const auto earliest = std::max(started + options.unknown_kid_interval,
                                   failures_in_row ? steady::now() + delay : started);
    unknown_kid_not_before.store(ticks(earliest));
    fetching.store(false);
    f->next = delay;
    f->finished = true;
    f->done.cancel();
    flight.reset();
    co_return delay;
  }

  static asio::awaitable<void> refresh_loop(std::shared_ptr<State> self) {
    while (!self->stopped) {
      const steady::duration delay = co_await self->fetch_once();  // never throws
      if (self->stopped) break;
      self->refresh_timer.expires_after(delay);
      co_await self->refresh_timer.async_wait(use_tuple);
    }
  }

  static asio::awaitable<std::shared_ptr<const JwkSet>> refresh_for(std::shared_ptr<State> self, std::string kid) {
    auto current = self->keys.load();
    if (self->stopped) co_return current;
    if (current && !kid.empty() && current->contains_kid(kid)) co_return current;  // a fetch brought it meanwhile
    if (!self->flight && ticks(steady::now()) < self->unknown_kid_not_before.load()) co_return current;
    co_await self->fetch_once();
    co_return self->keys.load();
  }

  void stop() {
    stopped = true;
    refresh_timer.cancel();
    if (flight) {
      flight->finished = true;
      flight->done.cancel();
    }
    clients.close();
  }
};

RemoteKeySource::RemoteKeySource(RemoteKeySourceOptions options) {
  if (options.jwks_uri.empty() == options.issuer.empty()) {
    throw std::invalid_argument("remote key source: set exactly one of jwks_uri and issuer (discovery)");
  }
  if (options.min_refresh.count() < 1 || options.max_refresh < options.min_refresh ||
      options.default_refresh < options.min_refresh || options.default_refresh > options.max_refresh) {
    throw std::invalid_argument("remote key source: need 1s <= min_refresh <= default_refresh <= max_refresh");
  }
  if (options.retry_min.count() < 1 || options.retry_max < options.retry_min) {
    throw std::invalid_argument("remote key source: need 1s <= retry_min <= retry_max");
  }
  if (options.fetch_timeout.count() <= 0 || options.max_document_bytes == 0) {
    throw std::invalid_argument("remote key source: fetch_timeout and max_document_bytes must be positive");
  }
  std::string error;
  const std::string& text = options.jwks_uri.empty() ? options.issuer : options.jwks_uri;
  auto url = options.jwks_uri.empty() ? detail::discovery_url(options.issuer, &error) : detail::Url::parse(text, &error);
  if (!url) throw std::invalid_argument("remote key source: " + text + ": " + error);
  if (!url->tls && !options.allow_plain_http) {
    throw std::invalid_argument("remote key source: " + text + ": keys must come over https");
  }
  auto io = detail::IoThread::shared();
  const bool discovery = options.jwks_uri.empty();
  auto state = std::make_shared<State>(std::move(options), io->executor());
  (discovery ? state->discovery : state->jwks_url) = *url;
  try {
    state->clients.for_url(*url);  // builds the TLS context now: a bad CA file fails here
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("remote key source: ") + e.what());
  }
  io_ = std::move(io);
  state_ = std::move(state);
  asio::co_spawn(state_->executor, State::refresh_loop(state_), asio::detached);
}

RemoteKeySource::~RemoteKeySource() {
  asio::post(state_->executor, [s = state_] { s->stop(); });
}

std::shared_ptr<const JwkSet> RemoteKeySource::current() const { return state_->keys.load(); }

std::uint64_t RemoteKeySource::generation() const noexcept {
  return state_->generation.load(std::memory_order_acquire);
}

asio::awaitable<std::shared_ptr<const JwkSet>> RemoteKeySource::refresh_for_unknown_kid(std::string kid) const {
  auto s = state_;
  auto current = s->keys.load();
  if (current && !kid.empty() && current->contains_kid(kid)) co_return current;
  // Rate-capped and nothing in flight: answer here, without a trip to the I/O thread.
  if (!s->fetching.load() && ticks(steady::now()) < s->unknown_kid_not_before.load()) co_return current;
  if (s->waiting.fetch_add(1) >= kMaxWaiting) {
    s->waiting.fetch_sub(1);
    co_return current;
  }
  struct Release {
    State* s;
    ~Release() { s->waiting.fetch_sub(1); }
  } release{s.get()};
  // No cancellation link: a cancel on the worker must not touch I/O-thread objects from there.
  co_return co_await asio::co_spawn(s->executor, State::refresh_for(s, std::move(kid)),
                                    asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
}

bool RemoteKeySource::wait_ready(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(state_->stats_mutex);
  state_->first_done_cv.wait_for(lock, timeout, [this] { return state_->first_done; });
  return state_->keys.load() != nullptr;
}

RemoteKeySourceStats RemoteKeySource::stats() const {
  std::lock_guard lock(state_->stats_mutex);
  return state_->stats;
}

const RemoteKeySourceOptions& RemoteKeySource::options() const noexcept { return state_->options; }

}  // namespace gatehouse::auth
