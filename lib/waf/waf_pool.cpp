#include "waf/waf_pool.hpp"

#include <pthread.h>

namespace gatehouse::detail {

WafPool::WafPool(unsigned threads, std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { loop(); });
    pthread_setname_np(threads_.back().native_handle(), "gatehouse-waf");
  }
}

WafPool::~WafPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) t.join();
}

bool WafPool::try_submit(std::shared_ptr<WafTask> task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= capacity_) return false;
    queue_.push_back(std::move(task));
    pending_.fetch_add(1, std::memory_order_relaxed);
  }
  ready_.notify_one();
  return true;
}

void WafPool::loop() {
  for (;;) {
    std::shared_ptr<WafTask> task;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task->run();
    task.reset();
    pending_.fetch_sub(1, std::memory_order_relaxed);
  }
}

}  // namespace gatehouse::detail
