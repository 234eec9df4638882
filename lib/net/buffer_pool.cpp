#include "net/buffer_pool.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <new>
#include <utility>

namespace gatehouse::detail {
namespace {
// Buffers are mapped on their own, outside the malloc heap: a burst of connections that each held
// one (say, many keep-alive connections going idle) gives the memory back to the system when they
// are freed, instead of leaving holes among the small objects of the heap.
char* map_block(std::size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return static_cast<char*>(p);
}
void unmap_block(char* b, std::size_t size) noexcept { ::munmap(b, size); }
}  // namespace

BufferPool::~BufferPool() {
  for (std::size_t i = 0; i < classes_.size(); ++i)
    for (char* b : classes_[i].free) unmap_block(b, kSizes[i]);
}

char* BufferPool::get(std::size_t size) {
  Class& c = classes_[index_of(size)];
  if (c.free.empty()) return map_block(kSizes[index_of(size)]);
  char* b = c.free.back();
  c.free.pop_back();
  c.low_water = std::min(c.low_water, c.free.size());
  return b;
}

void BufferPool::put(char* b, std::size_t size) noexcept {
  const std::size_t i = index_of(size);
  Class& c = classes_[i];
  if (c.free.size() < kKeep[i]) {
    try {
      c.free.push_back(b);
      return;
    } catch (...) {
    }
  }
  unmap_block(b, kSizes[i]);
  freed_since_sweep_ += kSizes[i];
}

std::size_t BufferPool::sweep() noexcept {
  // What was never taken during the whole interval was not needed: memory follows the number of
  // busy connections, not its peak.
  std::size_t freed = std::exchange(freed_since_sweep_, 0);
  for (std::size_t i = 0; i < classes_.size(); ++i) {
    Class& c = classes_[i];
    for (std::size_t k = 0; k < c.low_water && !c.free.empty(); ++k) {
      unmap_block(c.free.back(), kSizes[i]);
      c.free.pop_back();
      freed += kSizes[i];
    }
    c.low_water = c.free.size();
  }
  return freed;
}

}  // namespace gatehouse::detail
