// The WAF's evaluation threads: a few threads and a bounded queue, shared by every worker of a
// gateway, so that CPU-heavy rule evaluation never runs on (and never stalls) an I/O thread.
// Submitting never blocks: a full queue is refused at once, and the caller decides (503 or pass).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace gatehouse::detail {

/// Work for the pool. run() is called once, on a pool thread, unless the pool stops first.
class WafTask {
 public:
  virtual ~WafTask() = default;
  virtual void run() noexcept = 0;
};

class WafPool {
 public:
  WafPool(unsigned threads, std::size_t capacity);
  /// Stops the threads after the task each is running; queued tasks are dropped unrun.
  ~WafPool();
  WafPool(const WafPool&) = delete;
  WafPool& operator=(const WafPool&) = delete;

  /// Any thread. False when `capacity` tasks already wait.
  bool try_submit(std::shared_ptr<WafTask> task);
  /// Tasks waiting or running.
  std::size_t pending() const noexcept { return pending_.load(std::memory_order_relaxed); }

 private:
  void loop();

  std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::shared_ptr<WafTask>> queue_;
  bool stopping_ = false;
  std::atomic<std::size_t> pending_{0};
  std::vector<std::thread> threads_;
};

}  // namespace gatehouse::detail
