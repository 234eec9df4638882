#include "net/io_thread.hpp"

#include <chrono>
#include <exception>
#include <mutex>
#include <string>

#include "util/log.hpp"

namespace gatehouse::detail {

std::shared_ptr<IoThread> IoThread::shared() {
  static std::mutex mutex;
  static std::weak_ptr<IoThread> instance;
  std::lock_guard lock(mutex);
  auto io = instance.lock();
  if (!io) {
    io = std::make_shared<IoThread>();
    instance = io;
  }
  return io;
}

IoThread::IoThread() : work_(io_.get_executor()) {
  thread_ = std::thread([this] {
    for (;;) {
      try {
        io_.run();
        std::lock_guard lock(mutex_);
        done_ = true;
        done_cv_.notify_all();
        return;
      } catch (const std::exception& e) {
        // Handlers here catch their own errors; one that escapes must not end key refreshes.
        log(nullptr, LogLevel::error, std::string("background I/O: unexpected exception: ") + e.what());
      }
    }
  });
}

IoThread::~IoThread() { join(); }

void IoThread::join() {
  if (!thread_.joinable()) return;
  // Let the work of the last users wind down (their stop() closes connections and cancels
  // timers, so this takes moments), then stop whatever is left so that exit never hangs.
  work_.reset();
  {
    std::unique_lock lock(mutex_);
    done_cv_.wait_for(lock, std::chrono::seconds(2), [this] { return done_; });
  }
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace gatehouse::detail
