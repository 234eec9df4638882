#include "tls/tls_buffer_cache.hpp"

#include <array>

namespace gatehouse::detail::tls_buffers {
namespace {

// Enough for the connections of one worker that are mid-read or mid-write at the same moment in
// the common case; beyond that blocks go back to the allocator.
constexpr std::size_t kKeepPerSize = 8;

struct Cache {
  struct Stack {
    std::array<char*, kKeepPerSize> blocks{};
    std::size_t count = 0;
  };
  Stack input, output;
  Stack& of(std::size_t size) noexcept { return size == kInput ? input : output; }
  ~Cache() {
    for (Stack* s : {&input, &output})
      while (s->count > 0) ::operator delete(s->blocks[--s->count]);
  }
};

thread_local Cache cache;

}  // namespace

char* take(std::size_t size) {
  Cache::Stack& s = cache.of(size);
  if (s.count > 0) return s.blocks[--s.count];
  return static_cast<char*>(::operator new(size));
}

void give(char* block, std::size_t size) noexcept {
  if (!block) return;
  Cache::Stack& s = cache.of(size);
  if (s.count < kKeepPerSize) {
    s.blocks[s.count++] = block;
    return;
  }
  ::operator delete(block);
}

}  // namespace gatehouse::detail::tls_buffers
