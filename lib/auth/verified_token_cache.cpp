#include "auth/verified_token_cache.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <thread>

#include <openssl/err.h>
#include <openssl/evp.h>

namespace gatehouse::auth {
namespace {

// One digest context per thread, reused: the hit path then allocates nothing in OpenSSL and takes
// none of its locks (algorithm fetches lock a global store).
struct ThreadDigest {
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~ThreadDigest() {
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
  }
};

std::size_t shard_count(std::size_t max_entries) {
  const std::size_t threads = std::max<std::size_t>(1, std::thread::hardware_concurrency());
  std::size_t n = 8;
  while (n < 4 * threads && n < 64) n *= 2;
  while (n > 1 && n > max_entries) n /= 2;
  return n;
}

}  // namespace

std::size_t VerifiedTokenCache::KeyHash::operator()(const Key& k) const noexcept {
  std::size_t h;
  std::memcpy(&h, k.data(), sizeof(h));  // already uniformly random
  return h;
}

VerifiedTokenCache::VerifiedTokenCache(std::size_t max_entries, const std::array<unsigned char, 16>& salt)
    : salt_(salt) {
  const std::size_t n = shard_count(std::max<std::size_t>(1, max_entries));
  per_shard_ = std::max<std::size_t>(1, (max_entries + n - 1) / n);
  shards_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) shards_.push_back(std::make_unique<Shard>());
}

VerifiedTokenCache::~VerifiedTokenCache() = default;

bool VerifiedTokenCache::key_for(std::string_view token, Key& key) const noexcept {
  thread_local ThreadDigest digest;
  unsigned int len = 0;
  if (!digest.md || !digest.ctx || EVP_DigestInit_ex(digest.ctx, digest.md, nullptr) != 1 ||
      EVP_DigestUpdate(digest.ctx, salt_.data(), salt_.size()) != 1 ||
      EVP_DigestUpdate(digest.ctx, token.data(), token.size()) != 1 ||
      EVP_DigestFinal_ex(digest.ctx, key.data(), &len) != 1 || len != key.size()) {
    ERR_clear_error();
    return false;
  }
  return true;
}

VerifiedTokenCache::Shard& VerifiedTokenCache::shard_for(const Key& key) noexcept {
  std::uint64_t h;
  std::memcpy(&h, key.data() + 8, sizeof(h));  // other bytes than KeyHash uses
  return *shards_[h % shards_.size()];
}

std::optional<VerifiedTokenCache::Entry> VerifiedTokenCache::find(const Key& key) {
  Shard& s = shard_for(key);
  std::lock_guard lock(s.mutex);
  const auto it = s.index.find(key);
  if (it == s.index.end()) {
    ++s.misses;
    return std::nullopt;
  }
  ++s.hits;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->second;
}

void VerifiedTokenCache::insert(const Key& key, Entry entry) {
  Shard& s = shard_for(key);
  std::list<std::pair<Key, Entry>> evicted;  // destroyed after the lock is released
  std::lock_guard lock(s.mutex);
  if (const auto it = s.index.find(key); it != s.index.end()) {
    it->second->second = std::move(entry);
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    return;
  }
  if (s.index.size() >= per_shard_) {
    s.index.erase(s.lru.back().first);
    evicted.splice(evicted.begin(), s.lru, std::prev(s.lru.end()));
  }
  s.lru.emplace_front(key, std::move(entry));
  s.index.emplace(key, s.lru.begin());
}

void VerifiedTokenCache::erase(const Key& key) {
  Shard& s = shard_for(key);
  std::list<std::pair<Key, Entry>> erased;  // destroyed after the lock is released
  std::lock_guard lock(s.mutex);
  if (const auto it = s.index.find(key); it != s.index.end()) {
    erased.splice(erased.begin(), s.lru, it->second);
    s.index.erase(it);
  }
}

std::size_t VerifiedTokenCache::size() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mutex);
    n += s->index.size();
  }
  return n;
}

VerifiedTokenCacheStats VerifiedTokenCache::stats() const {
  VerifiedTokenCacheStats total;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mutex);
    total.hits += s->hits;
    total.misses += s->misses;
    total.entries += s->index.size();
  }
  return total;
}

}  // namespace gatehouse::auth
