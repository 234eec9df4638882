// The blocks TLS connections hold while bytes are in flight, recycled per thread: a connection
// takes one when it receives or sends and gives it back as soon as it is empty, so a busy worker
// reuses a few blocks and an idle connection holds none. Per thread, so no lock: a block given back
// on another thread (a stream destroyed elsewhere) simply joins that thread's cache.
#pragma once
#include <cstddef>
#include <new>

namespace gatehouse::detail::tls_buffers {

// One received record at most (2^14 + 256 bytes of expansion + 5 of header), rounded up.
inline constexpr std::size_t kInput = 17 * 1024;
// Four full records: a large body leaves in 64 KiB sends.
inline constexpr std::size_t kOutput = 4 * kInput;

/// A block of kInput or kOutput bytes. Throws std::bad_alloc.
char* take(std::size_t size);
/// Gives back a block from take(size); null is ignored.
void give(char* block, std::size_t size) noexcept;

}  // namespace gatehouse::detail::tls_buffers
