#include "gatehouse/exchange.hpp"

#include <algorithm>

namespace gatehouse {

Exchange::Exchange() : start_(clock::now()) {}

Exchange::Exchange(std::string_view method, std::string_view target,
                   std::initializer_list<std::pair<std::string_view, std::string_view>> headers)
    : request_(method, target), start_(clock::now()) {
  for (const auto& [name, value] : headers) request_.headers().add(name, value);
  // Defaults for tests and local handlers; the gateway core overwrites them for real requests.
  // Exchange cannot be moved, so testing::exchange() relies on these instead of setting them.
  set_peer(asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 40000), false);
  request_id_ = "test-id";
}

Exchange::~Exchange() {
  // Destroy in reverse order of creation: a later slot may refer to an earlier one.
  for (std::size_t i = slot_count_; i-- > 0;) {
    Slot& s = i < kSlotCapacity ? slots_[i] : extra_slots_[i - kSlotCapacity];
    s.destroy(s.obj);
  }
}

void Exchange::add_slot(const void* key, void* obj, Destroy d) {
  if (slot_count_ < kSlotCapacity) {
    slots_[slot_count_++] = {key, obj, d};
    return;
  }
  const std::size_t extra = slot_count_ - kSlotCapacity;
  if (extra == extra_capacity_) {
    const std::size_t cap = extra_capacity_ ? extra_capacity_ * 2 : 8;
    auto* grown = static_cast<Slot*>(arena_.allocate(cap * sizeof(Slot), alignof(Slot)));
    std::copy_n(extra_slots_, extra, grown);
    extra_slots_ = grown;  // the old block stays in the arena until the exchange ends
    extra_capacity_ = cap;
  }
  extra_slots_[extra] = {key, obj, d};
  ++slot_count_;
}

void* Exchange::find_slot(const void* key) const noexcept {
  for (std::size_t i = 0; i < slot_count_; ++i) {
    const Slot& s = i < kSlotCapacity ? slots_[i] : extra_slots_[i - kSlotCapacity];
    if (s.key == key) return s.obj;
  }
  return nullptr;
}

}  // namespace gatehouse
