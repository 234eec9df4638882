// A bounded, sharded LRU of tokens that passed verification.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gatehouse/auth/claims.hpp"

namespace gatehouse::auth {

struct VerifiedTokenCacheStats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::size_t entries = 0;
};

class VerifiedTokenCache {
 public:
  using Key = std::array<unsigned char, 32>;

  struct Entry {
    Claims claims;
    std::optional<double> exp;  // seconds since the epoch, as in the token
    std::optional<double> nbf;
    double cached_until = 0;    // re-verify after this, whatever exp says
    std::size_t issuer = 0;     // index into the verifier's issuers
    std::uint64_t key_generation = 0;  // the issuer's key set that verified it
    bool inactive = false;      // a negative answer (introspection said inactive): refuse on hit
  };

  /// `salt` identifies the owner: two caches (two verifiers) never produce the same key for a token.
  VerifiedTokenCache(std::size_t max_entries, const std::array<unsigned char, 16>& salt);
  ~VerifiedTokenCache();
  VerifiedTokenCache(const VerifiedTokenCache&) = delete;
  VerifiedTokenCache& operator=(const VerifiedTokenCache&) = delete;

  /// SHA-256 over salt and token. False only when OpenSSL fails.
  bool key_for(std::string_view token, Key& key) const noexcept;
  /// Copies out the entry and marks it recently used.
  std::optional<Entry> find(const Key& key);
  void insert(const Key& key, Entry entry);
  void erase(const Key& key);
  std::size_t size() const;

  VerifiedTokenCacheStats stats() const;

 private:
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept;
  };
  struct alignas(64) Shard {  // own cache line: threads on other shards do not contend
    std::mutex mutex;
    std::list<std::pair<Key, Entry>> lru;  // front = most recently used
    std::unordered_map<Key, std::list<std::pair<Key, Entry>>::iterator, KeyHash> index;
    std::uint64_t hits = 0;  // counted under the shard lock: no shared counter to fight over
    std::uint64_t misses = 0;
  };
  Shard& shard_for(const Key& key) noexcept;

  std::array<unsigned char, 16> salt_;
  std::size_t per_shard_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace gatehouse::auth
