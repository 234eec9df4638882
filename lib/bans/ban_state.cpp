#include "bans/ban_state.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "gatehouse/security_events.hpp"

namespace gatehouse {

namespace detail {

AddressKey address_key(const asio::ip::address& a) noexcept {
  if (a.is_v4()) return asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes();
  return a.to_v6().to_bytes();
}

asio::ip::address address_of(const AddressKey& k) {
  const asio::ip::address_v6 v6(k);
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6);
  return v6;
}

bool BanSet::contains(const AddressKey& k) const noexcept { return std::binary_search(sorted.begin(), sorted.end(), k); }

std::size_t AddressKeyHash::operator()(const AddressKey& k) const noexcept {
  std::uint64_t a, b;
  std::memcpy(&a, k.data(), 8);
  std::memcpy(&b, k.data() + 8, 8);
  return static_cast<std::size_t>((a * 0x9E3779B97F4A7C15ull) ^ (b + 0x632BE59BD9B4E019ull + (a >> 7)));
}

}  // namespace detail

namespace {
std::atomic<std::uint64_t> next_list_id{1};

std::string seconds_text(std::chrono::system_clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count());
}
}  // namespace

std::array<double, kSecurityEventKindCount> BanOptions::default_weights() noexcept {
  std::array<double, kSecurityEventKindCount> w{};
  auto set = [&](SecurityEventKind k, double v) { w[static_cast<std::size_t>(k)] = v; };
  set(SecurityEventKind::authentication_failure, 2);
  set(SecurityEventKind::authorization_denied, 1);
  set(SecurityEventKind::rate_limited, 1);
  set(SecurityEventKind::ip_filtered, 2);
  set(SecurityEventKind::waf_match, 5);
  set(SecurityEventKind::protocol_violation, 4);
  set(SecurityEventKind::tls_handshake_failure, 1);
  set(SecurityEventKind::client_certificate_rejected, 2);
  return w;
}

BanList::Impl::Impl(BanOptions o)
    : id(next_list_id.fetch_add(1)),
      snapshot(std::make_shared<const detail::BanSet>()),
      options(std::move(o)),
      clock(options.clock) {
  if (!clock) clock = std::shared_ptr<const Clock>(&Clock::system(), [](const Clock*) {});
  for (const auto& block : options.allow)
    if (!allow.add(block)) throw std::invalid_argument("bans: invalid CIDR block \"" + block + "\" in the allow list");
  if (!(options.threshold > 0)) throw std::invalid_argument("bans: the threshold must be positive");
  if (options.half_life.count() <= 0) throw std::invalid_argument("bans: half_life must be positive");
  if (options.growth < 1) throw std::invalid_argument("bans: growth must be at least 1");
  if (options.max_clients == 0) options.max_clients = 1;
}

void BanList::Impl::publish_locked() {
  auto set = std::make_shared<detail::BanSet>();
  set->sorted.reserve(bans.size());
  for (const auto& [k, e] : bans) set->sorted.push_back(k);  // std::map: already sorted
  const std::size_t n = set->sorted.size();
  snapshot.store(std::move(set), std::memory_order_release);
  version.fetch_add(1, std::memory_order_acq_rel);
  count.store(n, std::memory_order_release);
}

double BanList::Impl::decayed(const Score& s, time_point now) const {
  if (now <= s.at) return s.value;
  const double halves = std::chrono::duration<double>(now - s.at) / std::chrono::duration<double>(options.half_life);
  return s.value * std::exp2(-halves);
}

void BanList::Impl::evict_locked(time_point now) {
  // Drop the lowest tenth at once, so that a flood of new addresses costs O(1) per event
  // amortized. Clients with a recent offence go last: their next ban must still grow.
  std::vector<std::pair<double, detail::AddressKey>> ranked;
  ranked.reserve(scores.size());
  for (const auto& [k, s] : scores) {
    const bool remembered = s.offences > 0 && now - s.last_offence < options.forget_after;
    ranked.emplace_back(decayed(s, now) + (remembered ? options.threshold : 0), k);
  }
  const std::size_t drop = std::max<std::size_t>(1, ranked.size() / 10);
  std::nth_element(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(drop - 1), ranked.end());
  for (std::size_t i = 0; i < drop; ++i) scores.erase(ranked[i].second);
}

void BanList::Impl::observe(const SecurityEvent& e) {
  if (!e.client_ip) return;
  const auto kind = static_cast<std::size_t>(e.kind);
  if (kind >= options.weights.size()) return;
  const double weight = options.weights[kind];
  if (!(weight > 0) || allow.contains(*e.client_ip)) return;
  const auto key = detail::address_key(*e.client_ip);
  time_point until;
  unsigned offence = 0;
  double reached = 0;
  {
    std::lock_guard lock(mutex);
    const time_point now = clock->now();
    if (auto b = bans.find(key); b != bans.end() && b->second.ban.until > now) return;
    auto it = scores.find(key);
    if (it == scores.end()) {
      if (scores.size() >= options.max_clients) evict_locked(now);
      it = scores.emplace(key, Score{}).first;
    }
    Score& s = it->second;
    s.value = decayed(s, now) + weight;
    s.at = now;
    if (s.value < options.threshold) return;
    if (s.offences > 0 && now - s.last_offence >= options.forget_after) s.offences = 0;
    offence = ++s.offences;
    s.last_offence = now;
    reached = s.value;
    s.value = 0;
    auto duration = std::chrono::duration<double>(options.ban_time) * std::pow(options.growth, offence - 1);
    if (duration > std::chrono::duration<double>(options.max_ban_time)) duration = options.max_ban_time;
    until = now + std::chrono::duration_cast<std::chrono::system_clock::duration>(duration);
  }
  char score_text[32];
  std::snprintf(score_text, sizeof score_text, "%.1f", reached);
  add(*e.client_ip, until, std::string("score ") + score_text + " reached, last event " + std::string(to_string(e.kind)),
      "score", offence, true);
}

bool BanList::Impl::add(const asio::ip::address& client, time_point until, std::string reason, std::string source,
                        unsigned offence, bool share) {
  if (allow.contains(client)) return false;
  const auto key = detail::address_key(client);
  Ban ban;
  {
    std::lock_guard lock(mutex);
    const time_point now = clock->now();
    if (until <= now) return false;
    auto it = bans.find(key);
    if (it == bans.end()) {
      if (bans.size() >= options.max_bans) {
        refused_full.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
      it = bans.emplace(key, Entry{}).first;
    } else if (it->second.ban.until >= until) {
      return true;  // already banned at least as long
    }
    Entry& e = it->second;
    e.ban.client = detail::address_of(key);
    e.ban.since = now;
    e.ban.until = until;
    e.ban.reason = std::move(reason);
    e.ban.source = std::move(source);
    e.ban.offence = std::max(offence, 1u);
    e.stored = !share || !redis;
    ban = e.ban;
    publish_locked();
  }
  (ban.source == "score" ? by_score : ban.source == "api" ? by_api : by_shared).fetch_add(1, std::memory_order_relaxed);
  report(SecurityEventKind::ban, ban, ban.reason);
  if (share && redis) share_ban(ban);
  return true;
}

bool BanList::Impl::lift(const asio::ip::address& client, bool share, std::string_view why) {
  const auto key = detail::address_key(client);
  Ban ban;
  {
    std::lock_guard lock(mutex);
    auto it = bans.find(key);
    if (it == bans.end()) return false;
    ban = std::move(it->second.ban);
    bans.erase(it);
    publish_locked();
  }
  report(SecurityEventKind::unban, ban, std::string(why));
  if (share && redis) share_lift(client);
  return true;
}

void BanList::Impl::expire() {
  std::vector<Ban> ended;
  {
    std::lock_guard lock(mutex);
    const time_point now = clock->now();
    for (auto it = bans.begin(); it != bans.end();) {
      if (it->second.ban.until <= now) {
        ended.push_back(std::move(it->second.ban));
        it = bans.erase(it);
      } else {
        ++it;
      }
    }
    if (!ended.empty()) publish_locked();
    // Scores that decayed to nothing and offences long forgotten: no reason to keep the client.
    std::erase_if(scores, [&](const auto& kv) {
      const Score& s = kv.second;
      return decayed(s, now) < options.threshold / 1000 && (s.offences == 0 || now - s.last_offence >= options.forget_after);
    });
  }
  for (const Ban& b : ended) report(SecurityEventKind::unban, b, "ban expired");
}

std::vector<Ban> BanList::Impl::list() const {
  std::vector<Ban> out;
  {
    std::lock_guard lock(mutex);
    const time_point now = clock->now();
    for (const auto& [k, e] : bans)
      if (e.ban.until > now) out.push_back(e.ban);
  }
  std::sort(out.begin(), out.end(), [](const Ban& a, const Ban& b) { return a.until < b.until; });
  return out;
}

double BanList::Impl::score(const asio::ip::address& client) const {
  std::lock_guard lock(mutex);
  auto it = scores.find(detail::address_key(client));
  return it == scores.end() ? 0 : decayed(it->second, clock->now());
}

void BanList::Impl::report(SecurityEventKind kind, const Ban& ban, std::string reason) {
  std::shared_ptr<SecurityEvents> reporter;
  {
    std::lock_guard lock(mutex);
    reporter = events.lock();
  }
  if (!reporter) return;
  SecurityEvent ev;
  ev.kind = kind;
  ev.outcome = SecurityEventOutcome::success;
  ev.action = kind == SecurityEventKind::ban ? "client-banned" : "client-unbanned";
  ev.reason = std::move(reason);
  ev.client_ip = ban.client;
  ev.rule_name = "automatic-bans";
  ev.label("source", ban.source).label("offence", std::to_string(ban.offence));
  if (kind == SecurityEventKind::ban) ev.label("duration_s", seconds_text(ban.until - ban.since));
  reporter->report(std::move(ev));
}

}  // namespace gatehouse
