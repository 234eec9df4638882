// One background thread with its own io_context, shared by the parts of the library that talk to
// key servers and introspection endpoints, so that this I/O never runs on (or blocks) a worker.
#pragma once
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

namespace gatehouse::detail {

class IoThread {
 public:
  /// The process-wide instance, started on first use and stopped when the last holder lets go.
  /// Work posted to it must not hold a shared_ptr<IoThread>: the last release would then happen on
  /// the thread itself, which cannot join itself.
  static std::shared_ptr<IoThread> shared();

  IoThread();
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  asio::io_context::executor_type executor() noexcept { return io_.get_executor(); }
  /// What the destructor does, for owners whose I/O objects must go before the thread ends but
  /// after its handlers ran: lets the work wind down (at most 2 s), then stops and joins. Idempotent.
  void join();

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;  // run() returned: nothing left to do
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

}  // namespace gatehouse::detail
