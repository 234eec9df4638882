// Serves a cpp-httplib server (plain or SSL) on a free 127.0.0.1 port from its own thread, for
// integration tests. Declare it after everything the handlers use: it stops the server first.
#pragma once
#include <httplib.h>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace gatehouse::test {

class ServerThread {
 public:
  ServerThread() = default;
  ServerThread(const ServerThread&) = delete;
  ServerThread& operator=(const ServerThread&) = delete;
  ~ServerThread() {
    if (!server_) return;
    server_->stop();
    thread_.join();
  }

  /// Binds `server` (handlers registered already), serves it, and returns the port once it runs.
  unsigned short start(httplib::Server& server) {
    const int port = server.bind_to_any_port("127.0.0.1");
    if (port <= 0) throw std::runtime_error("ServerThread: cannot bind a loopback port");
    server_ = &server;
    thread_ = std::thread([&server] { server.listen_after_bind(); });
    while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return static_cast<unsigned short>(port);
  }

 private:
  httplib::Server* server_ = nullptr;
  std::thread thread_;
};

}  // namespace gatehouse::test
