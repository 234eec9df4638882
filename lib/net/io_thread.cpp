#include "net/io_thread.hpp"

#include <cstdio>
#include <exception>
#include <mutex>

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
        return;
      } catch (const std::exception& e) {
        // Handlers here catch their own errors; one that escapes must not end key refreshes.
        std::fprintf(stderr, "gatehouse: background I/O: unexpected exception: %s\n", e.what());
      }
    }
  });
}

IoThread::~IoThread() {
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace gatehouse::detail
