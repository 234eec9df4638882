// A fast random generator for ids and jitter (request ids, trace and span ids): xoshiro256** (Blackman and
// Vigna), seeded from the kernel's CSPRNG, one per thread, so workers never share or lock it.
// Ids must be unique and hard to guess in bulk, not secret keys: never use it for keys or tokens.
#pragma once
#include <cstdint>

namespace gatehouse::detail {

class FastRandom {
 public:
  /// Seeded from getrandom(2) (std::random_device if that fails).
  FastRandom() noexcept;
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// This thread's generator (each worker thread has its own, seeded on first use).
  static FastRandom& local() noexcept {
    thread_local FastRandom gen;
    return gen;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

/// The two lowercase hex digits of every byte value.
struct HexPairs {
  char pair[256][2];
};
inline constexpr HexPairs kHexPairs = [] {
  HexPairs t{};
  constexpr char digits[] = "0123456789abcdef";
  for (int b = 0; b < 256; ++b) {
    t.pair[b][0] = digits[b >> 4];
    t.pair[b][1] = digits[b & 0xf];
  }
  return t;
}();

/// Writes the 16 lowercase hex digits of `v` to out[0..16), a byte (two digits, one table load)
/// per step: request and trace ids are written on every request.
inline void write_hex64(char* out, std::uint64_t v) noexcept {
  for (int i = 14; i >= 0; i -= 2, v >>= 8) {
    out[i] = kHexPairs.pair[v & 0xff][0];
    out[i + 1] = kHexPairs.pair[v & 0xff][1];
  }
}

/// Uniform in [0, 1), from this thread's generator (jitter, random choices; nothing secret).
inline double random_unit() noexcept {
  return static_cast<double>(FastRandom::local().next() >> 11) * 0x1.0p-53;
}

}  // namespace gatehouse::detail
