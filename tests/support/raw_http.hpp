// Raw loopback sockets for integration tests: clients that send exact bytes (hostile ones too) and
// upstreams that answer with exact bytes, with timeouts so that no test can hang.
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

namespace gatehouse::test {

/// A loopback port with nothing listening on it (bound, then closed): connecting is refused.
unsigned short closed_port();
/// Connects to 127.0.0.1:port; returns the fd or throws.
int connect_loopback(unsigned short port);
/// Sends all bytes; false on error.
bool send_all(int fd, std::string_view bytes);
/// Reads until the peer closes, `stop_when(received)` is true, or the timeout passes.
std::string receive(int fd, std::chrono::milliseconds timeout,
                    const std::function<bool(const std::string&)>& stop_when = {});
/// One request on a fresh connection: sends `bytes`, reads until close or timeout.
std::string exchange_raw(unsigned short port, std::string_view bytes,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
/// True once `received` holds one complete response with a Content-Length body (or no body).
bool has_complete_response(const std::string& received);
/// Status code of the first response in `received`, 0 if none.
int status_of(const std::string& received);

/// A TCP server on 127.0.0.1 whose every connection is handled by `handler(fd)` on its own thread.
class RawServer {
 public:
  explicit RawServer(std::function<void(int fd)> handler);
  ~RawServer();
  unsigned short port() const noexcept { return port_; }
  int connections() const noexcept { return connections_.load(); }

 private:
  std::function<void(int)> handler_;
  int listen_fd_ = -1;
  unsigned short port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

/// Resident set size of this process in KiB (VmRSS).
long rss_kib();

std::chrono::milliseconds since(std::chrono::steady_clock::time_point t0);
std::string lower(std::string s);
/// The head of a response ("...\r\n\r\n" included) and the bytes after it.
std::string head_of(const std::string& response);
std::string body_of(const std::string& response);
/// Reads until `buf` holds a whole head, which is removed from `buf` and returned.
std::optional<std::string> read_head(int fd, std::string& buf, std::chrono::milliseconds timeout);

struct UntilClose {
  std::string bytes;
  bool closed = false;  // the peer closed (false: the timeout passed first)
  std::chrono::milliseconds elapsed{};
};
/// Reads until the peer closes or the timeout passes.
UntilClose read_until_close(int fd, std::chrono::milliseconds timeout);

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};
/// Runs a shell command (curl, openssl) and collects its output and exit code.
CommandResult run_command(const std::string& cmd);

}  // namespace gatehouse::test
