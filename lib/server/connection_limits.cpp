#include "server/connection_limits.hpp"

#include <cstring>

namespace gatehouse::detail {

ListenerConnections::Key ListenerConnections::key_of(const asio::ip::address& a) noexcept {
  asio::ip::address_v6::bytes_type b;
  if (a.is_v4()) b = asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes();
  else b = a.to_v6().to_bytes();
  Key k;
  std::memcpy(&k.hi, b.data(), 8);
  std::memcpy(&k.lo, b.data() + 8, 8);
  return k;
}

ListenerConnections::Admit ListenerConnections::admit(const asio::ip::address& client, std::size_t max_total,
                                                      std::size_t max_per_client) noexcept {
  const std::size_t before = total_.fetch_add(1, std::memory_order_relaxed);
  if (max_total != 0 && before >= max_total) {
    total_.fetch_sub(1, std::memory_order_relaxed);
    return Admit::listener_full;
  }
  if (max_per_client == 0) return Admit::ok;
  const Key k = key_of(client);
  Shard& s = shard_of(k);
  try {
    std::lock_guard lock(s.mu);
    std::uint32_t& n = s.counts[k];
    if (n < max_per_client) {
      ++n;
      return Admit::ok;
    }
  } catch (...) {
    // Out of memory for the entry: refused, as a security check fails (closed).
  }
  total_.fetch_sub(1, std::memory_order_relaxed);
  return Admit::client_full;
}

void ListenerConnections::release(const asio::ip::address& client, bool per_client) noexcept {
  if (per_client) {
    const Key k = key_of(client);
    Shard& s = shard_of(k);
    std::lock_guard lock(s.mu);
    if (const auto it = s.counts.find(k); it != s.counts.end() && --it->second == 0) s.counts.erase(it);
  }
  total_.fetch_sub(1, std::memory_order_relaxed);
}

std::size_t ListenerConnections::open_from(const asio::ip::address& client) const noexcept {
  const Key k = key_of(client);
  const Shard& s = shard_of(k);
  std::lock_guard lock(s.mu);
  const auto it = s.counts.find(k);
  return it == s.counts.end() ? 0 : it->second;
}

}  // namespace gatehouse::detail
