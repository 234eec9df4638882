#include "net/buffer_pool.hpp"

#include <algorithm>

namespace gatehouse::detail {

BufferPool::~BufferPool() {
  for (Class& c : classes_)
    for (char* b : c.free) delete[] b;
}

char* BufferPool::get(std::size_t size) {
  Class& c = classes_[index_of(size)];
  if (c.free.empty()) return new char[kSizes[index_of(size)]];
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
  delete[] b;
}

std::size_t BufferPool::sweep() noexcept {
  // What was never taken during the whole interval was not needed: memory follows the number of
  // busy connections, not its peak.
  std::size_t freed = 0;
  for (std::size_t i = 0; i < classes_.size(); ++i) {
    Class& c = classes_[i];
    for (std::size_t k = 0; k < c.low_water && !c.free.empty(); ++k) {
      delete[] c.free.back();
      c.free.pop_back();
      freed += kSizes[i];
    }
    c.low_water = c.free.size();
  }
  return freed;
}

}  // namespace gatehouse::detail
