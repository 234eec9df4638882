#include "auth/base64url.hpp"

#include <array>
#include <cstdint>

namespace gatehouse::auth {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::uint8_t kInvalid = 0xff;

constexpr std::array<std::uint8_t, 256> make_table() {
  std::array<std::uint8_t, 256> t{};
  for (auto& v : t) v = kInvalid;
  for (std::uint8_t i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = i;
  return t;
}
constexpr std::array<std::uint8_t, 256> kTable = make_table();

}  // namespace

bool base64url_decode(std::string_view in, std::string& out) {
  out.clear();
  const std::size_t rem = in.size() % 4;
  if (rem == 1) return false;
  out.reserve(in.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  std::size_t i = 0;
  for (; i + 4 <= in.size(); i += 4) {
    acc = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const std::uint8_t v = kTable[static_cast<unsigned char>(in[i + j])];
      if (v == kInvalid) return false;
      acc = (acc << 6) | v;
    }
    out.push_back(static_cast<char>(acc >> 16));
    out.push_back(static_cast<char>((acc >> 8) & 0xff));
    out.push_back(static_cast<char>(acc & 0xff));
  }
  if (rem == 0) return true;
  acc = 0;
  for (std::size_t j = 0; j < rem; ++j) {
    const std::uint8_t v = kTable[static_cast<unsigned char>(in[i + j])];
    if (v == kInvalid) return false;
    acc = (acc << 6) | v;
  }
  if (rem == 2) {
    // 12 bits carry one byte: the low 4 bits must be zero (canonical form).
    if ((acc & 0x0f) != 0) return false;
    out.push_back(static_cast<char>(acc >> 4));
  } else {
    // 18 bits carry two bytes: the low 2 bits must be zero.
    if ((acc & 0x03) != 0) return false;
    out.push_back(static_cast<char>(acc >> 10));
    out.push_back(static_cast<char>((acc >> 2) & 0xff));
  }
  return true;
}

std::optional<std::string> base64url_decode(std::string_view in) {
  std::string out;
  if (!base64url_decode(in, out)) return std::nullopt;
  return out;
}

std::string base64url_encode(const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8) | p[i + 2];
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (size - i == 1) {
    const std::uint32_t v = std::uint32_t{p[i]} << 16;
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (size - i == 2) {
    const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8);
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

}  // namespace gatehouse::auth
