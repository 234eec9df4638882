#include "gatehouse/headers.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace gatehouse {
namespace {
inline unsigned char lower(unsigned char c) noexcept { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x != y && lower(x) != lower(y)) return false;
  }
  return true;
}

std::optional<std::string_view> Headers::get(std::string_view name) const noexcept {
  if (!may_contain(name)) return std::nullopt;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Field f = field_at(i);
    if (iequals(f.name, name)) return f.value;
  }
  return std::nullopt;
}

std::size_t Headers::count(std::string_view name) const noexcept {
  if (!may_contain(name)) return 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < slots_.size(); ++i)
    if (iequals(field_at(i).name, name)) ++n;
  return n;
}

void Headers::add(std::string_view name, std::string_view value) {
  if (bytes_.size() + name.size() + value.size() > std::numeric_limits<std::uint32_t>::max())
    throw std::length_error("header block too large");
  Slot s;
  s.name_off = static_cast<std::uint32_t>(bytes_.size());
  s.name_len = static_cast<std::uint32_t>(name.size());
  bytes_.append(name);
  s.value_off = static_cast<std::uint32_t>(bytes_.size());
  s.value_len = static_cast<std::uint32_t>(value.size());
  bytes_.append(value);
  slots_.push_back(s);
  name_lengths_ |= length_bit(name.size());
}

void Headers::set(std::string_view name, std::string_view value) {
  if (!may_contain(name)) return add(name, value);
  // Replace the first field in place (keeps its position), drop the others.
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (!iequals(field_at(i).name, name)) continue;
    const auto off = static_cast<std::uint32_t>(bytes_.size());
    bytes_.append(value);
    slots_[i].value_off = off;
    slots_[i].value_len = static_cast<std::uint32_t>(value.size());
    for (std::size_t j = slots_.size(); j-- > i + 1;)
      if (iequals(field_at(j).name, name)) slots_.erase(slots_.begin() + static_cast<std::ptrdiff_t>(j));
    return;
  }
  add(name, value);
}

std::size_t Headers::remove(std::string_view name) noexcept {
  if (!may_contain(name)) return 0;
  const auto before = slots_.size();
  std::erase_if(slots_, [&](const Slot& s) {
    return iequals(std::string_view(bytes_.data() + s.name_off, s.name_len), name);
  });
  return before - slots_.size();
}

void Headers::clear() noexcept {
  bytes_.clear();
  slots_.clear();
  name_lengths_ = 0;
  pending_ = {0, 0, 0, 0};
  in_value_ = has_pending_ = false;
}

std::size_t Headers::byte_size() const noexcept {
  std::size_t n = 0;
  for (const Slot& s : slots_) n += s.name_len + s.value_len;
  return n;
}

void Headers::reserve(std::size_t bytes, std::size_t fields) {
  bytes_.reserve(bytes);
  slots_.reserve(fields);
}

void Headers::append_name_piece(std::string_view piece) {
  if (!has_pending_ || in_value_) {
    if (has_pending_) commit_field();
    pending_ = {static_cast<std::uint32_t>(bytes_.size()), 0, 0, 0};
    has_pending_ = true;
    in_value_ = false;
  }
  bytes_.append(piece);
  pending_.name_len += static_cast<std::uint32_t>(piece.size());
}

void Headers::append_value_piece(std::string_view piece) {
  if (!has_pending_) return;  // a value without a name: the parser rejects this first
  if (!in_value_) {
    in_value_ = true;
    pending_.value_off = static_cast<std::uint32_t>(bytes_.size());
  }
  bytes_.append(piece);
  pending_.value_len += static_cast<std::uint32_t>(piece.size());
}

bool Headers::commit_field() {
  if (!has_pending_) return false;
  if (!in_value_) pending_.value_off = static_cast<std::uint32_t>(bytes_.size());
  slots_.push_back(pending_);
  name_lengths_ |= length_bit(pending_.name_len);
  has_pending_ = in_value_ = false;
  return true;
}

}  // namespace gatehouse
