#include "support/raw_http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace gatehouse::test {

unsigned short closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("closed_port: cannot bind a loopback port");
  return ntohs(a.sin_port);
}

int connect_loopback(unsigned short port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + " failed");
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string receive(int fd, std::chrono::milliseconds timeout, const std::function<bool(const std::string&)>& stop_when) {
  std::string out;
  const auto end = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (stop_when && stop_when(out)) break;
  }
  return out;
}

std::string exchange_raw(unsigned short port, std::string_view bytes, std::chrono::milliseconds timeout) {
  const int fd = connect_loopback(port);
  send_all(fd, bytes);
  std::string r = receive(fd, timeout);
  ::close(fd);
  return r;
}

bool has_complete_response(const std::string& r) {
  const auto head_end = r.find("\r\n\r\n");
  if (head_end == std::string::npos) return false;
  std::string head = r.substr(0, head_end);
  for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto cl = head.find("\r\ncontent-length:");
  if (cl == std::string::npos) return true;
  const std::size_t len = std::stoul(head.substr(cl + 17));
  return r.size() >= head_end + 4 + len;
}

int status_of(const std::string& r) {
  if (r.size() < 12 || r.compare(0, 5, "HTTP/") != 0) return 0;
  return std::atoi(r.c_str() + 9);
}

RawServer::RawServer(std::function<void(int)> handler) : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 128) != 0)
    throw std::runtime_error("RawServer: bind/listen failed");
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] {
    std::vector<std::thread> workers;
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++connections_;
      workers.emplace_back([this, fd] {
        handler_(fd);
        ::close(fd);
      });
    }
    for (auto& w : workers) w.join();
  });
}

RawServer::~RawServer() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

// Shared by the integration tests.
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

milliseconds since(SteadyClock::time_point t0) {
  return std::chrono::duration_cast<milliseconds>(SteadyClock::now() - t0);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string head_of(const std::string& r) {
  const auto p = r.find("\r\n\r\n");
  return p == std::string::npos ? r : r.substr(0, p + 4);
}

std::string body_of(const std::string& r) {
  const auto p = r.find("\r\n\r\n");
  return p == std::string::npos ? std::string() : r.substr(p + 4);
}

std::optional<std::string> read_head(int fd, std::string& buf, milliseconds timeout) {
  const auto end = SteadyClock::now() + timeout;
  for (;;) {
    const auto pos = buf.find("\r\n\r\n");
    if (pos != std::string::npos) {
      std::string head = buf.substr(0, pos + 4);
      buf.erase(0, pos + 4);
      return head;
    }
    const auto left = std::chrono::duration_cast<milliseconds>(end - SteadyClock::now()).count();
    if (left <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return std::nullopt;
    char tmp[16384];
    const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return std::nullopt;
    buf.append(tmp, static_cast<std::size_t>(n));
  }
}

UntilClose read_until_close(int fd, milliseconds timeout) {
  UntilClose r;
  const auto t0 = SteadyClock::now();
  const auto end = t0 + timeout;
  char tmp[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(end - SteadyClock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) {
      r.closed = true;
      break;
    }
    r.bytes.append(tmp, static_cast<std::size_t>(n));
  }
  r.elapsed = since(t0);
  return r;
}

CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = ::pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace gatehouse::test
