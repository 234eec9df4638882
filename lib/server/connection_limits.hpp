// Connection-level protection of a listener: connections open at once, in total and per client
// address, counted across all workers (so N workers do not multiply a limit) and across reloads
// (a listener a reload keeps keeps its counts). One count in and one out per connection, never
// per request.
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <asio/ip/address.hpp>

namespace gatehouse::detail {

class ListenerConnections {
 public:
  enum class Admit : unsigned char { ok, listener_full, client_full };

  /// Counts a new connection from `client`, unless the listener already has `max_total` (0: no
  /// limit) or the client `max_per_client` (0: not counted per client). Nothing is counted when
  /// it refuses.
  Admit admit(const asio::ip::address& client, std::size_t max_total, std::size_t max_per_client) noexcept;
  /// Uncounts a connection admit() accepted; `per_client` as it was counted.
  void release(const asio::ip::address& client, bool per_client) noexcept;

  std::size_t open() const noexcept { return total_.load(std::memory_order_relaxed); }
  /// Connections open from `client` (those counted per client).
  std::size_t open_from(const asio::ip::address& client) const noexcept;

 private:
  struct Key {
    std::uint64_t hi, lo;  // the IPv6 form (IPv4 as ::ffff:a.b.c.d)
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept {
      return static_cast<std::size_t>((k.hi ^ (k.lo * 0x9e3779b97f4a7c15ULL)) >> 7);
    }
  };
  // Per-client counts in shards with a lock each: a lock is taken once per connection open and
  // close, and shards keep workers from meeting on it.
  struct alignas(64) Shard {
    mutable std::mutex mu;
    std::unordered_map<Key, std::uint32_t, KeyHash> counts;
  };
  static Key key_of(const asio::ip::address& a) noexcept;
  Shard& shard_of(const Key& k) noexcept { return shards_[KeyHash{}(k) % shards_.size()]; }
  const Shard& shard_of(const Key& k) const noexcept { return shards_[KeyHash{}(k) % shards_.size()]; }

  alignas(64) std::atomic<std::size_t> total_{0};
  std::array<Shard, 16> shards_;
};

/// A connection's place in its listener's counts, given back when the connection ends.
class ListenerSlot {
 public:
  ListenerSlot() = default;
  ListenerSlot(std::shared_ptr<ListenerConnections> counts, const asio::ip::address& client, bool per_client) noexcept
      : counts_(std::move(counts)), client_(client), per_client_(per_client) {}
  ListenerSlot(ListenerSlot&& o) noexcept
      : counts_(std::move(o.counts_)), client_(o.client_), per_client_(o.per_client_) {}
  ListenerSlot& operator=(ListenerSlot&& o) noexcept {
    if (this != &o) {
      release();
      counts_ = std::move(o.counts_);
      client_ = o.client_;
      per_client_ = o.per_client_;
    }
    return *this;
  }
  ~ListenerSlot() { release(); }

 private:
  void release() noexcept {
    if (counts_) counts_->release(client_, per_client_);
    counts_.reset();
  }
  std::shared_ptr<ListenerConnections> counts_;
  asio::ip::address client_;
  bool per_client_ = false;
};

}  // namespace gatehouse::detail
