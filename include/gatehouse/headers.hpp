// An ordered list of HTTP header fields with case-insensitive lookup.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse {

/// ASCII case-insensitive comparison, as HTTP field names require.
bool iequals(std::string_view a, std::string_view b) noexcept;

/// Header fields in arrival order. All bytes live in one buffer owned by the object and fields are
/// offsets into it, so a parsed header block costs two allocations however many fields it has, and
/// the object can be copied or moved freely.
///
/// Views returned by get() or by iteration stay valid until the next call that adds a field.
class Headers {
 public:
  struct Field {
    std::string_view name;
    std::string_view value;
  };

  /// Value of the first field with this name, if any.
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  bool contains(std::string_view name) const noexcept { return get(name).has_value(); }
  std::size_t count(std::string_view name) const noexcept;

  /// Appends a field (copies name and value).
  void add(std::string_view name, std::string_view value);
  /// Replaces every field of that name by one field with this value.
  void set(std::string_view name, std::string_view value);
  /// Removes every field of that name; returns how many were removed.
  std::size_t remove(std::string_view name) noexcept;
  /// Removes every field for which pred(name, value) is true.
  template <class Pred>
  std::size_t remove_if(Pred pred) {
    // One pass: the fields kept move down over the ones removed, in order.
    std::size_t kept = 0, i = 0;
    try {
      for (; i < slots_.size(); ++i) {
        if (pred(field_at(i))) continue;
        if (kept != i) slots_[kept] = slots_[i];
        ++kept;
      }
    } catch (...) {
      // pred threw at field i: it and the fields after it stay, so no field shows twice.
      for (; i < slots_.size(); ++i) slots_[kept++] = slots_[i];
      slots_.resize(kept);
      throw;
    }
    const std::size_t removed = slots_.size() - kept;
    slots_.resize(kept);
    return removed;
  }

  std::size_t size() const noexcept { return slots_.size(); }
  bool empty() const noexcept { return slots_.empty(); }
  void clear() noexcept;
  Field operator[](std::size_t i) const noexcept { return field_at(i); }
  /// Bytes used by names and values (a measure for header size limits).
  std::size_t byte_size() const noexcept;

  class const_iterator {
   public:
    using value_type = Field;
    using difference_type = std::ptrdiff_t;
    const_iterator() = default;
    const_iterator(const Headers* h, std::size_t i) : h_(h), i_(i) {}
    Field operator*() const noexcept { return h_->field_at(i_); }
    const_iterator& operator++() noexcept { ++i_; return *this; }
    const_iterator operator++(int) noexcept { auto t = *this; ++i_; return t; }
    bool operator==(const const_iterator& o) const noexcept { return i_ == o.i_; }
   private:
    const Headers* h_ = nullptr;
    std::size_t i_ = 0;
  };
  const_iterator begin() const noexcept { return {this, 0}; }
  const_iterator end() const noexcept { return {this, slots_.size()}; }

  // Incremental building used by the HTTP parser, whose callbacks may deliver a name or a value
  // in several pieces. Not needed by middleware.
  void append_name_piece(std::string_view piece);
  void append_value_piece(std::string_view piece);
  /// Ends the field being built; returns false if no name was given.
  bool commit_field();
  void reserve(std::size_t bytes, std::size_t fields);

 private:
  struct Slot {
    std::uint32_t name_off, name_len, value_off, value_len;
  };
  Field field_at(std::size_t i) const noexcept {
    const Slot& s = slots_[i];
    return {std::string_view(bytes_.data() + s.name_off, s.name_len),
            std::string_view(bytes_.data() + s.value_off, s.value_len)};
  }
  /// Bit (n % 64) is set when some field's name has n bytes: most lookups are for fields that are
  /// absent, and this answers them without a scan. Removal leaves bits set (a scan decides then).
  static std::uint64_t length_bit(std::size_t n) noexcept { return std::uint64_t{1} << (n & 63); }
  bool may_contain(std::string_view name) const noexcept { return (name_lengths_ & length_bit(name.size())) != 0; }

  std::string bytes_;
  std::vector<Slot> slots_;
  std::uint64_t name_lengths_ = 0;
  Slot pending_{0, 0, 0, 0};
  bool in_value_ = false;
  bool has_pending_ = false;
};

}  // namespace gatehouse
