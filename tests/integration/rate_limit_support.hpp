// Shared by the rate-limit loopback tests: a route that answers locally behind a limiter, and a
// keep-alive client that reads whole responses (and reconnects when the gateway closes).
#pragma once
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

#include <gatehouse/gatehouse.hpp>

#include "support/raw_http.hpp"

namespace gatehouse::test {

inline Route limited_route(std::shared_ptr<const Middleware> limiter) {
  return {.name = "api", .path = "/", .middleware = {std::move(limiter)},
          .origin = [](Exchange&) {
            Response r(Status::ok);
            r.set_body("ok", "text/plain");
            return Flow::respond(std::move(r));
          }};
}

class KeepAliveClient {
 public:
  explicit KeepAliveClient(unsigned short port) : port_(port) {}
  ~KeepAliveClient() { reset(); }
  KeepAliveClient(const KeepAliveClient&) = delete;
  KeepAliveClient& operator=(const KeepAliveClient&) = delete;

  /// GET path; the status, 0 when the connection failed (the next call reconnects).
  int get(const std::string& path = "/") {
    using namespace std::chrono_literals;
    if (fd_ < 0) fd_ = connect_loopback(port_);
    if (!send_all(fd_, "GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n")) return reset();
    auto head = read_head(fd_, buf_, 5s);
    if (!head) return reset();
    const std::string lhead = lower(*head);
    std::size_t length = 0;
    if (auto p = lhead.find("content-length:"); p != std::string::npos) length = std::stoul(lhead.substr(p + 15));
    while (buf_.size() < length) {
      char tmp[4096];
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return reset();
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
    buf_.erase(0, length);
    return status_of(*head);
  }

 private:
  int reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buf_.clear();
    return 0;
  }
  unsigned short port_;
  int fd_ = -1;
  std::string buf_;
};

}  // namespace gatehouse::test
