#include "proxy/connection_slots.hpp"

namespace gatehouse::detail {

void ConnectionWaiters::add(Waiter& w) noexcept {
  if (w.linked) return;
  w.prev = tail_;
  w.next = nullptr;
  if (tail_) tail_->next = &w;
  else head_ = &w;
  tail_ = &w;
  w.linked = true;
}

void ConnectionWaiters::remove(Waiter& w) noexcept {
  if (!w.linked) return;
  if (w.prev) w.prev->next = w.next;
  else head_ = w.next;
  if (w.next) w.next->prev = w.prev;
  else tail_ = w.prev;
  w.prev = w.next = nullptr;
  w.linked = false;
}

void ConnectionWaiters::wake_one() noexcept {
  Waiter* w = head_;
  if (!w) return;
  // Unlinked, so that the next wake goes to the next waiter; it links itself again if it must
  // wait on.
  remove(*w);
  w->timer->cancel();
}

}  // namespace gatehouse::detail
