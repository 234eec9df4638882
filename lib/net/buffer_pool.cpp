#include "net/buffer_pool.hpp"

namespace gatehouse::detail {
namespace {
// Kept for the next requests; the rest goes back to the allocator so that memory follows the
// number of busy connections, not its peak.
constexpr std::size_t kKeepSmall = 32;
constexpr std::size_t kKeepLarge = 4;
}  // namespace

BufferPool::~BufferPool() {
  for (char* b : small_) delete[] b;
  for (char* b : large_) delete[] b;
}

char* BufferPool::get(std::size_t size) {
  auto& free = size >= kLarge ? large_ : small_;
  if (free.empty()) return new char[size >= kLarge ? kLarge : kSmall];
  char* b = free.back();
  free.pop_back();
  return b;
}

void BufferPool::put(char* b, std::size_t size) noexcept {
  auto& free = size >= kLarge ? large_ : small_;
  if (free.size() < (size >= kLarge ? kKeepLarge : kKeepSmall)) {
    try {
      free.push_back(b);
      return;
    } catch (...) {
    }
  }
  delete[] b;
  ++freed_;
}

}  // namespace gatehouse::detail
