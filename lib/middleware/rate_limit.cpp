#include "gatehouse/middleware/rate_limit.hpp"

#include <charconv>
#include <limits>
#include <random>
#include <set>
#include <stdexcept>

#include "gatehouse/security_event.hpp"
#include "http1/token.hpp"
#include "middleware/rate_limit_key.hpp"
#include "middleware/rate_limit_state.hpp"
#include "observe/gateway_metrics.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

namespace gatehouse {
namespace detail {
namespace {

std::string_view part_name(RateLimitKeyPart::Kind k) noexcept {
  switch (k) {
    case RateLimitKeyPart::Kind::client_address: return "client_address";
    case RateLimitKeyPart::Kind::route: return "route";
    case RateLimitKeyPart::Kind::subject: return "subject";
    case RateLimitKeyPart::Kind::api_key: return "api_key";
    case RateLimitKeyPart::Kind::claim: return "claim";
    case RateLimitKeyPart::Kind::header: return "header";
  }
  return "?";
}

std::uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

RateLimitEntry::RateLimitEntry(const RateLimit& l, std::size_t max_keys, std::uint64_t s)
    : limit(&l), table(max_keys), seed(s) {
  const auto period_ticks = std::chrono::duration_cast<std::chrono::nanoseconds>(l.period).count() / kTickNs;
  const std::uint64_t burst = l.burst == 0 ? l.requests : l.burst;
  // Rounded to the nearest tick; at least one tick apart.
  gcra.interval = std::max<std::int64_t>(1, (period_ticks + static_cast<std::int64_t>(l.requests) / 2) /
                                                static_cast<std::int64_t>(l.requests));
  gcra.tolerance = gcra.interval * static_cast<std::int64_t>(burst);
  quoted_name = "\"" + l.name + "\"";
  policy_item = quoted_name + ";q=" + std::to_string(l.requests) + ";w=" + std::to_string(l.period.count());
  for (const auto& p : l.key) {
    if (!parts.empty()) parts += '+';
    parts += part_name(p.kind);
    if (!p.name.empty()) parts += ":" + p.name;
  }
  if (parts.empty()) parts = "global";
}

}  // namespace detail

namespace {

using detail::RateLimitEntry;

// Per-request record for RateLimitHeaders::all: the limit with the fewest requests left.
struct RateLimitSeen {
  const RateLimitEntry* entry = nullptr;
  std::int64_t remaining = 0;
  std::int64_t reset_s = 0;
};

bool valid_limit_name(std::string_view n) noexcept {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

void append_number(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void set_fields(Headers& h, const RateLimitOptions& o, const std::string& policy_header, const RateLimitEntry& e,
                std::int64_t remaining, std::int64_t reset_s) {
  std::string v = e.quoted_name;
  v += ";r=";
  append_number(v, remaining);
  v += ";t=";
  append_number(v, reset_s);
  h.set("ratelimit-policy", policy_header);
  h.set("ratelimit", v);
  if (o.x_ratelimit_headers) {
    v.clear();
    append_number(v, static_cast<std::int64_t>(e.limit->requests));
    h.set("x-ratelimit-limit", v);
    v.clear();
    append_number(v, remaining);
    h.set("x-ratelimit-remaining", v);
    v.clear();
    append_number(v, reset_s);
    h.set("x-ratelimit-reset", v);
  }
}

// One line per limit per second at most: a flood must not become a flood of log lines.
void log_refusal(RateLimitEntry& e, const Exchange& ex, bool shadow, std::int64_t retry_s) {
  const std::shared_ptr<Logger> logger = detail::logger_or_default(nullptr);
  if (!logger->enabled(LogLevel::info)) return;
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::int64_t next = e.next_log_ns.load(std::memory_order_relaxed);
  if (now < next || !e.next_log_ns.compare_exchange_strong(next, now + 1'000'000'000, std::memory_order_relaxed)) {
    e.unlogged.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::string request_id = detail::without_controls(ex.request_id());
  const std::string route = detail::without_controls(ex.route_name());
  const std::string client = ex.client_address().to_string();
  const std::string retry = std::to_string(retry_s);
  const std::string unlogged = std::to_string(e.unlogged.exchange(0, std::memory_order_relaxed));
  detail::log(logger, LogLevel::info, shadow ? "rate_limit: over the limit (shadow, let through)" : "rate_limit: request refused",
              {{"limit", e.limit->name},
               {"route", route},
               {"request_id", request_id},
               {"client", client},
               {"retry_after_s", retry},
               {"unlogged_since_last", unlogged}});
}

void report_refusal(Exchange& ex, const RateLimitEntry& e, bool shadow, std::int64_t retry_s) {
  if (!ex.security_events()) return;
  SecurityEvent ev;
  ev.kind = SecurityEventKind::rate_limited;
  ev.outcome = shadow ? SecurityEventOutcome::unknown : SecurityEventOutcome::failure;
  ev.reason = shadow ? "over rate limit (shadow mode: let through)" : "over rate limit";
  ev.http_status = shadow ? 0 : 429;
  ev.rule_id = e.limit->name;
  ev.rule_name = std::to_string(e.limit->requests) + " per " + std::to_string(e.limit->period.count()) + "s, burst " +
                 std::to_string(e.gcra.tolerance / e.gcra.interval);
  ev.label("mode", shadow ? "shadow" : "enforce").label("key", e.parts).label("retry_after_s", std::to_string(retry_s));
  ex.report(std::move(ev));
}

}  // namespace

namespace detail {

std::optional<Flow> rate_limit_verdict(Exchange& ex, const RateLimitOptions& options, const std::string& policy_header,
                                       RateLimitEntry& e, const GcraDecision& d, RateLimitFewest& fewest,
                                       std::string_view allowed_outcome, std::string_view refused_outcome) {
  if (d.allowed) {
    count_rate_limit(ex, e.limit->name, allowed_outcome);
    if (!e.limit->shadow && d.remaining < fewest.remaining) fewest = {&e, d.remaining, d.reset};
    return std::nullopt;
  }
  const std::int64_t retry_s = ticks_to_seconds_ceil(d.retry_after, 1);
  const bool shadow = e.limit->shadow;
  count_rate_limit(ex, e.limit->name, shadow ? std::string_view("shadow_limited") : refused_outcome);
  log_refusal(e, ex, shadow, retry_s);
  report_refusal(ex, e, shadow, retry_s);
  if (shadow) return std::nullopt;
  Flow f = Flow::respond(Status::too_many_requests);
  Headers& h = f.response().headers();
  h.set("retry-after", std::to_string(retry_s));
  if (options.headers != RateLimitHeaders::none) set_fields(h, options, policy_header, e, 0, retry_s);
  return f;
}

void rate_limit_admitted(Exchange& ex, const RateLimitOptions& options, const RateLimitFewest& fewest) {
  if (options.headers == RateLimitHeaders::all && fewest.entry) {
    ex.emplace<RateLimitSeen>(RateLimitSeen{fewest.entry, fewest.remaining, ticks_to_seconds_ceil(fewest.reset)});
  }
}

}  // namespace detail

RateLimiter::RateLimiter(RateLimitOptions options) : options_(std::move(options)), state_(std::make_unique<State>()) {
  if (options_.limits.empty()) throw std::invalid_argument("RateLimiter: at least one limit is needed");
  if (options_.ipv4_prefix > 32 || options_.ipv4_prefix == 0) throw std::invalid_argument("RateLimiter: ipv4_prefix must be 1..32");
  if (options_.ipv6_prefix > 128 || options_.ipv6_prefix == 0) throw std::invalid_argument("RateLimiter: ipv6_prefix must be 1..128");
  if (options_.max_keys == 0 || options_.max_keys > (std::size_t{1} << 30)) {
    throw std::invalid_argument("RateLimiter: max_keys must be 1..2^30");
  }
  std::set<std::string, std::less<>> names;
  for (const RateLimit& l : options_.limits) {
    const std::string what = "RateLimiter: limit \"" + detail::printable(l.name) + "\": ";
    if (!valid_limit_name(l.name)) {
      throw std::invalid_argument("RateLimiter: a limit name must be 1-64 letters, digits, '_', '-' or '.', got \"" +
                                  detail::printable(l.name) + "\"");
    }
    if (!names.insert(l.name).second) throw std::invalid_argument(what + "the name is used twice");
    if (l.requests == 0 || l.requests > 1'000'000'000) throw std::invalid_argument(what + "requests must be 1..1e9");
    if (l.period < std::chrono::seconds(1) || l.period > std::chrono::hours(24 * 366)) {
      throw std::invalid_argument(what + "period must be 1 s .. 366 days");
    }
    if (l.burst > 1'000'000'000) throw std::invalid_argument(what + "burst must be at most 1e9");
    for (const auto& p : l.key) {
      const bool named = p.kind == RateLimitKeyPart::Kind::claim || p.kind == RateLimitKeyPart::Kind::header;
      if (named && p.name.empty()) throw std::invalid_argument(what + "a claim or header key part needs a name");
      if (p.kind == RateLimitKeyPart::Kind::header && !detail::is_http_token(p.name)) {
        throw std::invalid_argument(what + "invalid header name \"" + detail::printable(p.name) + "\"");
      }
    }
  }
  for (const RateLimit& l : options_.limits) {
    state_->entries.push_back(std::make_unique<detail::RateLimitEntry>(l, options_.max_keys, detail::random_seed()));
    if (options_.shared.redis) state_->entries.back()->enable_shared(options_.shared);
    if (l.shadow) continue;  // a trial: clients are not told about it
    if (!state_->policy_header.empty()) state_->policy_header += ", ";
    state_->policy_header += state_->entries.back()->policy_item;
  }
}

RateLimiter::~RateLimiter() = default;

Flow RateLimiter::on_request(Exchange& ex) const {
  if (options_.shared.redis) return on_request_shared(ex);
  thread_local std::string key;  // reused: no allocation per request once warm
  const std::int64_t now = detail::rate_limit_now(options_.clock);
  detail::RateLimitFewest fewest;
  for (const auto& entry : state_->entries) {
    RateLimitEntry& e = *entry;
    if (!detail::build_rate_limit_key(e.limit->key, ex, options_.ipv4_prefix, options_.ipv6_prefix, key)) {
      detail::count_rate_limit(ex, e.limit->name, "no_key");
      continue;
    }
    const detail::RateLimitTable::Result r = e.table.decide(detail::rate_limit_key_hash(key, e.seed), now, e.gcra);
    if (r.evicted_live) detail::count_rate_limit_eviction(ex, e.limit->name);
    if (auto refused = detail::rate_limit_verdict(ex, options_, state_->policy_header, e, r.decision, fewest)) {
      return std::move(*refused);
    }
  }
  detail::rate_limit_admitted(ex, options_, fewest);
  return Flow::next();
}

Flow RateLimiter::on_response(Exchange& ex) const {
  if (options_.headers != RateLimitHeaders::all) return Flow::next();
  const RateLimitSeen* seen = ex.find<RateLimitSeen>();
  if (!seen || !seen->entry) return Flow::next();
  if (ex.response().status() == 429 && ex.response().headers().contains("ratelimit")) return Flow::next();
  set_fields(ex.response().headers(), options_, state_->policy_header, *seen->entry, seen->remaining, seen->reset_s);
  return Flow::next();
}

}  // namespace gatehouse
