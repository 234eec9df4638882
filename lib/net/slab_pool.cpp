#include "net/slab_pool.hpp"

#include <algorithm>

namespace gatehouse::detail {

SlabPool::SlabPool(std::size_t block_size, std::size_t per_chunk) : per_chunk_(per_chunk) {
  constexpr std::size_t align = alignof(std::max_align_t);
  block_ = (std::max(block_size, sizeof(FreeBlock)) + align - 1) / align * align;
}

SlabPool::~SlabPool() = default;

void* SlabPool::allocate() {
  if (!free_) {
    // operator new[] of std::byte is aligned for any object (max_align_t).
    chunks_.reserve(chunks_.size() + 1);
    auto chunk = std::make_unique<std::byte[]>(block_ * per_chunk_);
    for (std::size_t i = per_chunk_; i-- > 0;) {
      auto* b = reinterpret_cast<FreeBlock*>(chunk.get() + i * block_);
      b->next = free_;
      free_ = b;
    }
    chunks_.push_back(std::move(chunk));
  }
  FreeBlock* b = free_;
  free_ = b->next;
  return b;
}

void SlabPool::deallocate(void* p) noexcept {
  auto* b = static_cast<FreeBlock*>(p);
  b->next = free_;
  free_ = b;
}

}  // namespace gatehouse::detail
