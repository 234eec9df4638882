// A real redis-server for a test: started on a free loopback port with no persistence, in a
// scratch directory, stopped (SIGKILL if it must) by the destructor. Pause/resume (SIGSTOP/SIGCONT),
// kill and restart on the same port for failure tests. Sentinel mode too.
#pragma once
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"

extern char** environ;

namespace gatehouse::test {

/// A loopback port that was free a moment ago (bound to port 0, then closed).
inline unsigned free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool loopback_port_accepts(unsigned port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

class RedisServer {
 public:
  /// `extra`: more command-line options ("--requirepass", "x", ...). The port is `port` (0: a
  /// free one). `sentinel_config`: text of a sentinel configuration: runs redis-server --sentinel.
  explicit RedisServer(std::vector<std::string> extra = {}, unsigned port = 0, std::string sentinel_config = {})
      : extra_(std::move(extra)), port_(port ? port : free_loopback_port()), sentinel_(std::move(sentinel_config)) {
    start();
  }
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  unsigned port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  /// The port for TLS when started with --tls-port (the caller picks it).
  const TempDir& dir() const { return dir_; }

  void start() {
    std::vector<std::string> args{"redis-server"};
    if (!sentinel_.empty()) args.push_back(dir_.file("sentinel.conf", sentinel_));
    const std::string tls_port_flag = "--tls-port";
    bool tls_only = false;
    for (std::size_t i = 0; i + 1 < extra_.size(); ++i)
      if (extra_[i] == tls_port_flag) tls_only = true;
    args.insert(args.end(), {"--port", tls_only ? "0" : std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", dir_.dir.string(), "--logfile",
                             (dir_.dir / "redis.log").string()});
    if (!sentinel_.empty()) args.push_back("--sentinel");
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ) != 0)
      throw std::runtime_error("cannot start redis-server");
    const unsigned wait_port = tls_only ? tls_port() : port_;
    for (int i = 0; i < 300; ++i) {
      if (loopback_port_accepts(wait_port)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop();
    throw std::runtime_error("redis-server did not start on port " + std::to_string(wait_port));
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
  }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }
  /// redis-cli against this server, output trimmed (for setting up replication, failovers).
  std::string cli(const std::string& command) const {
    std::string cmd = "redis-cli -p " + std::to_string(port_) + " " + command + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[512];
    while (p && std::fgets(buf, sizeof buf, p)) out += buf;
    if (p) ::pclose(p);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }

 private:
  unsigned tls_port() const {
    for (std::size_t i = 0; i + 1 < extra_.size(); ++i)
      if (extra_[i] == "--tls-port") return static_cast<unsigned>(std::stoul(extra_[i + 1]));
    return port_;
  }
  TempDir dir_;
  std::vector<std::string> extra_;
  unsigned port_;
  std::string sentinel_;
  pid_t pid_ = 0;
};

}  // namespace gatehouse::test
