#include "gatehouse/exchange.hpp"

#include <algorithm>

#include "core/exchange_access.hpp"
#include "gatehouse/client_identity.hpp"
#include "core/request_body_buffer.hpp"

namespace gatehouse {

asio::awaitable<BufferedBody> Exchange::read_request_body(std::size_t limit) {
  if (!body_buffer_) {
    BufferedBody none{{}, false, 500};
    co_return none;
  }
  co_return co_await body_buffer_->fill(limit);
}

Exchange::Exchange() : start_(clock::now()) {}

Exchange::Exchange(std::string_view method, std::string_view target,
                   std::initializer_list<std::pair<std::string_view, std::string_view>> headers)
    : request_(method, target), start_(clock::now()) {
  for (const auto& [name, value] : headers) request_.headers().add(name, value);
  // Defaults for tests and local handlers; the gateway core overwrites them for real requests.
  // Exchange cannot be moved, so testing::exchange() relies on these instead of setting them.
  detail::ExchangeAccess::set_peer(*this, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 40000), false);
  request_id_ = "test-id";
}

Exchange::~Exchange() { destroy_slots(); }

std::string_view Exchange::client_cert_subject() const noexcept {
  return client_identity_ ? std::string_view(client_identity_->subject) : std::string_view();
}

void Exchange::destroy_slots() noexcept {
  // Destroy in reverse order of creation: a later slot may refer to an earlier one.
  for (std::size_t i = slot_count_; i-- > 0;) {
    Slot& s = i < kSlotCapacity ? slots_[i] : extra_slots_[i - kSlotCapacity];
    s.destroy(s.obj);
  }
  slot_count_ = 0;
  extra_slots_ = nullptr;
  extra_capacity_ = 0;
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

namespace detail {

void ExchangeAccess::reset(Exchange& ex) noexcept {
  ex.destroy_slots();
  ex.arena_.release();
  RequestAccess::clear(ex.request_);
  ex.response_.headers().clear();
  ex.response_.set_status(200u);
  ex.response_.clear_body();
  ex.peer_ = {};
  ex.client_address_ = asio::ip::address();
  ex.sni_.clear();
  ex.client_identity_ = nullptr;
  ex.request_id_.clear();
  ex.route_name_.clear();
  ex.upstream_endpoint_.clear();
  ex.trace_ = TraceContext{};
  ex.start_ = {};  // whoever takes it next sets its start
  ex.bytes_in_ = ex.bytes_out_ = 0;
  ex.metrics_shard_ = nullptr;
  ex.worker_metrics_ = nullptr;
  ex.body_buffer_ = nullptr;
  ex.peer_trusted_ = ex.secure_ = false;
}

}  // namespace detail
}  // namespace gatehouse
