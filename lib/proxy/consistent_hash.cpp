// The "consistent_hash" load-balancing policy: Maglev over a key of the request.
#include <charconv>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

#include "gatehouse/auth/claims.hpp"
#include "gatehouse/load_balancers.hpp"
#include "proxy/maglev_table.hpp"
#include "util/text.hpp"

namespace gatehouse {
namespace {

using detail::MaglevTable;

// The value of cookie `name` in the request's Cookie fields.
std::optional<std::string_view> cookie_value(const Request& req, std::string_view name) {
  for (auto f : req.headers()) {
    if (!iequals(f.name, "cookie")) continue;
    std::string_view rest = f.value;
    while (!rest.empty()) {
      const auto semi = rest.find(';');
      std::string_view pair = detail::trim_ows(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      const auto eq = pair.find('=');
      if (eq != std::string_view::npos && detail::trim_ows(pair.substr(0, eq)) == name)
        return detail::trim_ows(pair.substr(eq + 1));
    }
  }
  return std::nullopt;
}

// The key's hash, or nullopt when the request has no key.
std::optional<std::uint64_t> key_hash(const HashKey& key, const Exchange& ex) {
  switch (key.source) {
    case HashKey::Source::client_address: {
      const asio::ip::address a = ex.client_address();
      if (a.is_v4()) {
        const auto b = a.to_v4().to_bytes();
        return detail::stable_hash({reinterpret_cast<const char*>(b.data()), b.size()});
      }
      const auto b = a.to_v6().to_bytes();
      return detail::stable_hash({reinterpret_cast<const char*>(b.data()), b.size()});
    }
    case HashKey::Source::header: {
      const auto v = ex.request().headers().get(key.name);
      if (!v || v->empty()) return std::nullopt;
      return detail::stable_hash(*v);
    }
    case HashKey::Source::cookie: {
      const auto v = cookie_value(ex.request(), key.name);
      if (!v || v->empty()) return std::nullopt;
      return detail::stable_hash(*v);
    }
    case HashKey::Source::claim: {
      // Only the authenticate middleware stores Claims, and only for a token it verified.
      const auth::Claims* claims = ex.find<auth::Claims>();
      if (!claims) return std::nullopt;
      const auth::ClaimValue v = key.name.starts_with('/') ? claims->at(key.name) : claims->get(key.name);
      if (const auto s = v.string(); s && !s->empty()) return detail::stable_hash(*s);
      if (const auto i = v.integer()) {
        char buf[24];
        const auto end = std::to_chars(buf, buf + sizeof buf, *i).ptr;
        return detail::stable_hash({buf, static_cast<std::size_t>(end - buf)});
      }
      return std::nullopt;
    }
  }
  return std::nullopt;
}

// The table for one list of endpoints, shared by the workers: they all see the same list, and a
// table is 4 bytes a slot. Built under the lock, only when the list changes.
struct SharedTable {
  std::mutex mu;
  std::string fingerprint;
  std::shared_ptr<const MaglevTable> table;
};

class ConsistentHash final : public LoadBalancer {
 public:
  ConsistentHash(const ConsistentHashOptions& o, std::shared_ptr<SharedTable> shared)
      : key_(o.key), table_size_(o.table_size), fallback_(o.fallback()), shared_(std::move(shared)) {
    if (!fallback_) throw std::invalid_argument("consistent_hash: the fallback factory returned null");
  }

  std::size_t pick(const PickRequest& r) override {
    const auto hash = key_hash(key_, r.exchange);
    if (!hash) return fallback_->pick(r);
    if (generation_ != r.generation || !table_) rebuild(r);
    // A retry walks on through the table to the next endpoint not tried yet.
    const std::size_t size = table_->size();
    std::size_t slot = *hash % size;
    for (std::size_t step = 0; step < size; ++step, slot = (slot + 1) % size) {
      const std::size_t i = table_->at(slot);
      if (!r.was_tried(i)) return i;
    }
    return table_->at(*hash % size);  // every endpoint was tried
  }

  void on_attempt_start(const UpstreamEndpoint& ep) override { fallback_->on_attempt_start(ep); }
  void on_attempt_end(const UpstreamEndpoint& ep, bool ok) override { fallback_->on_attempt_end(ep, ok); }

 private:
  void rebuild(const PickRequest& r) {
    std::vector<MaglevTable::Member> members;
    std::string fingerprint;
    for (const UpstreamEndpoint& ep : r.endpoints) {
      // The resolved address names an endpoint: a DNS name may stand for several.
      std::string name = ep.label + "|" + ep.address.address().to_string() + ":" + std::to_string(ep.address.port());
      fingerprint += name + "#" + std::to_string(ep.weight) + ";";
      members.push_back({std::move(name), ep.weight});
    }
    std::lock_guard lock(shared_->mu);
    if (shared_->fingerprint != fingerprint || !shared_->table) {
      shared_->table = std::make_shared<const MaglevTable>(members, std::max(table_size_, next_prime(members.size() * 100)));
      shared_->fingerprint = std::move(fingerprint);
    }
    table_ = shared_->table;
    generation_ = r.generation;
  }
  static std::size_t next_prime(std::size_t n) {
    while (!detail::is_prime(n)) ++n;
    return n;
  }

  HashKey key_;
  std::size_t table_size_;
  std::unique_ptr<LoadBalancer> fallback_;
  std::shared_ptr<SharedTable> shared_;
  std::shared_ptr<const MaglevTable> table_;
  std::uint64_t generation_ = ~std::uint64_t{0};
};

}  // namespace

LoadBalancerFactory consistent_hash(ConsistentHashOptions options) {
  if (!detail::is_prime(options.table_size)) throw std::invalid_argument("consistent_hash: table_size must be a prime");
  if ((options.key.source == HashKey::Source::header || options.key.source == HashKey::Source::cookie ||
       options.key.source == HashKey::Source::claim) &&
      options.key.name.empty())
    throw std::invalid_argument("consistent_hash: the key needs a name");
  if (!options.fallback) options.fallback = round_robin();
  auto shared = std::make_shared<SharedTable>();
  return [options = std::move(options), shared] { return std::make_unique<ConsistentHash>(options, shared); };
}

}  // namespace gatehouse
