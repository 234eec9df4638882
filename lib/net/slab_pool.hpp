// Fixed-size blocks for one worker's long-lived objects (client sessions), carved from chunks of
// their own. Sessions live as long as their connection, while a request's short-lived objects
// come and go between them: kept apart, the sessions of idle connections sit packed in a few
// pages instead of pinning a page each among freed holes of the malloc heap.
#pragma once
#include <cstddef>
#include <memory>
#include <new>
#include <vector>

namespace gatehouse::detail {

class SlabPool {
 public:
  /// Blocks of `block_size` bytes (aligned for any object), `per_chunk` to a chunk.
  explicit SlabPool(std::size_t block_size, std::size_t per_chunk = 64);
  ~SlabPool();
  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;

  std::size_t block_size() const noexcept { return block_; }
  void* allocate();
  void deallocate(void* p) noexcept;

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  std::size_t block_;
  std::size_t per_chunk_;
  FreeBlock* free_ = nullptr;
  std::vector<std::unique_ptr<std::byte[]>> chunks_;
};

/// A standard allocator over a SlabPool, for std::allocate_shared: the control block and the
/// object share one block. Requests that do not fit a block go to operator new.
template <class T>
class SlabAllocator {
 public:
  using value_type = T;
  explicit SlabAllocator(SlabPool& pool) noexcept : pool_(&pool) {}
  template <class U>
  SlabAllocator(const SlabAllocator<U>& o) noexcept : pool_(o.pool()) {}

  T* allocate(std::size_t n) {
    if (n * sizeof(T) <= pool_->block_size() && alignof(T) <= alignof(std::max_align_t))
      return static_cast<T*>(pool_->allocate());
    return static_cast<T*>(::operator new(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n * sizeof(T) <= pool_->block_size() && alignof(T) <= alignof(std::max_align_t)) pool_->deallocate(p);
    else ::operator delete(p);
  }
  SlabPool* pool() const noexcept { return pool_; }
  template <class U>
  bool operator==(const SlabAllocator<U>& o) const noexcept {
    return pool_ == o.pool();
  }

 private:
  SlabPool* pool_;
};

}  // namespace gatehouse::detail
