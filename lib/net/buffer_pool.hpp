// I/O buffers recycled per worker, so an idle connection holds none and a busy one reuses memory.
// Three sizes: small for heads and small bodies, medium and large for streaming bodies with few
// syscalls. Buffers a worker did not need for a whole sweep interval go back to the allocator.
#pragma once
#include <array>
#include <cstddef>
#include <utility>
#include <vector>

namespace gatehouse::detail {

class BufferPool {
 public:
  static constexpr std::size_t kSmall = 16 * 1024;
  static constexpr std::size_t kMedium = 64 * 1024;
  static constexpr std::size_t kLarge = 256 * 1024;
  /// The size class for a body expected to need `bytes` more (0: unknown): medium or large.
  static constexpr std::size_t size_for(std::size_t bytes) noexcept {
    return bytes != 0 && bytes <= kMedium ? kMedium : kLarge;
  }

  BufferPool() = default;
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  ~BufferPool();
  /// A buffer of exactly `size` bytes, which must be kSmall, kMedium or kLarge.
  char* get(std::size_t size);
  void put(char* b, std::size_t size) noexcept;
  /// Frees the buffers that stayed unused since the last sweep; returns how many bytes went back
  /// to the allocator since the previous sweep (these, and those put back beyond what the pool
  /// keeps), so that the caller can ask the allocator to return them to the system.
  std::size_t sweep() noexcept;

 private:
  struct Class {
    std::vector<char*> free;
    std::size_t low_water = 0;  // the fewest free buffers since the last sweep
  };
  static std::size_t index_of(std::size_t size) noexcept { return size >= kLarge ? 2 : size >= kMedium ? 1 : 0; }
  static constexpr std::array<std::size_t, 3> kSizes{kSmall, kMedium, kLarge};
  static constexpr std::array<std::size_t, 3> kKeep{64, 32, 16};  // at most, per class
  std::array<Class, 3> classes_{};
  std::size_t freed_since_sweep_ = 0;
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
  /// Swaps an empty buffer for one of `size` bytes if that is larger (contents are not kept).
  void grow(std::size_t size = BufferPool::kLarge) {
    if (size <= size_ || !pool_) return;
    char* bigger = pool_->get(size);
    release();
    data_ = bigger;
    size_ = size;
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
