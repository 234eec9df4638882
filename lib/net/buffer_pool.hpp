// I/O buffers recycled per worker, so an idle connection holds none and a busy one reuses memory.
// Two sizes: small for heads and small bodies, large for streaming big bodies with few syscalls.
#pragma once
#include <cstddef>
#include <utility>
#include <vector>

namespace gatehouse::detail {

class BufferPool {
 public:
  static constexpr std::size_t kSmall = 16 * 1024;
  static constexpr std::size_t kLarge = 256 * 1024;
  BufferPool() = default;
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  ~BufferPool();
  char* get(std::size_t size);
  void put(char* b, std::size_t size) noexcept;
  /// Buffers freed (rather than kept) since the last call.
  std::size_t take_freed() noexcept { return std::exchange(freed_, 0); }

 private:
  std::vector<char*> small_, large_;
  std::size_t freed_ = 0;
};

/// A buffer taken from a pool and given back on destruction.
class PooledBuffer {
 public:
  PooledBuffer() = default;
  explicit PooledBuffer(BufferPool& pool, std::size_t size = BufferPool::kSmall)
      : pool_(&pool), data_(pool.get(size)), size_(size) {}
  PooledBuffer(PooledBuffer&& o) noexcept
      : pool_(o.pool_), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  PooledBuffer& operator=(PooledBuffer&& o) noexcept {
    release();
    pool_ = o.pool_;
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    return *this;
  }
  ~PooledBuffer() { release(); }
  void release() noexcept {
    if (data_) pool_->put(std::exchange(data_, nullptr), std::exchange(size_, 0));
  }
  /// Swaps an empty small buffer for a large one (contents are not kept).
  void grow() {
    if (size_ >= BufferPool::kLarge || !pool_) return;
    char* big = pool_->get(BufferPool::kLarge);
    release();
    data_ = big;
    size_ = BufferPool::kLarge;
  }
  char* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool large() const noexcept { return size_ >= BufferPool::kLarge; }
  explicit operator bool() const noexcept { return data_ != nullptr; }

 private:
  BufferPool* pool_ = nullptr;
  char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace gatehouse::detail
