// A gateway that runs out of file descriptors: a child process serves with RLIMIT_NOFILE lowered
// to a few descriptors above what it has open, and this process (its clients, with the usual
// limit) fills them. The gateway must keep serving the connections it has, stop accepting without
// spinning, log the episode once, and accept again on its own once descriptors free up.
// Its own program (meson test "fd-exhaustion"): lowering the limit needs a process of its own.
#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <gatehouse/gatehouse.hpp>

#include "support/raw_http.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

namespace {

int open_descriptors() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return -1;
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;  // the directory's own
}

// The child: a gateway on one worker thread, its port written to `port_fd`, stderr (the library's
// log) to `log_fd`; runs until SIGTERM. Never returns.
[[noreturn]] void serve_with_few_descriptors(int port_fd, int log_fd) {
  ::dup2(log_fd, STDERR_FILENO);
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);  // before any thread: sigwait below takes it
  int code = 0;
  try {
    Gateway gw(GatewayOptions{.workers = 1});
    gw.listen({.address = "127.0.0.1", .port = 0});
    gw.route({.path = "/", .origin = [](Exchange&) { return Flow::respond(Status::ok, "ok"); }});
    gw.start();
    // Room for four more descriptors: the first client connections take them.
    const rlimit low{static_cast<rlim_t>(open_descriptors() + 4), static_cast<rlim_t>(open_descriptors() + 4)};
    if (::setrlimit(RLIMIT_NOFILE, &low) != 0) ::_exit(3);
    const unsigned short port = gw.local_endpoints().at(0).port();
    if (::write(port_fd, &port, sizeof port) != sizeof port) ::_exit(4);
    int sig = 0;
    sigwait(&term, &sig);
    gw.stop();
    gw.wait();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child failed: %s\n", e.what());
    code = 5;
  }
  ::_exit(code);
}

std::string drain_pipe(int fd) {
  std::string out;
  char buf[4096];
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

bool complete(const std::string& r) { return has_complete_response(r); }

// CPU time the child used so far (user + system), from /proc.
double cpu_seconds(pid_t pid) {
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!f) return -1;
  char buf[1024] = {};
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string s(buf, n);
  const auto close_paren = s.rfind(')');
  if (close_paren == std::string::npos) return -1;
  std::vector<std::string> fields;
  std::size_t at = close_paren + 2;
  while (at < s.size()) {
    const auto sp = s.find(' ', at);
    fields.push_back(s.substr(at, sp - at));
    if (sp == std::string::npos) break;
    at = sp + 1;
  }
  if (fields.size() < 13) return -1;
  return (std::stod(fields[11]) + std::stod(fields[12])) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

TEST_CASE("out of file descriptors: existing connections served, accepting pauses and resumes on its own") {
  int port_pipe[2], log_pipe[2];
  REQUIRE(::pipe2(port_pipe, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(log_pipe, O_CLOEXEC) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) serve_with_few_descriptors(port_pipe[1], log_pipe[1]);
  ::close(port_pipe[1]);
  ::close(log_pipe[1]);
  struct Reap {  // a failed REQUIRE must not leave the child behind
    pid_t pid;
    ~Reap() {
      if (pid <= 0) return;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{child};

  pollfd ready{port_pipe[0], POLLIN, 0};
  REQUIRE(::poll(&ready, 1, 10'000) == 1);
  unsigned short port = 0;
  REQUIRE(::read(port_pipe[0], &port, sizeof port) == sizeof port);

  // A keep-alive client, served before the descriptors run out.
  const int kept = connect_loopback(port);
  REQUIRE(send_all(kept, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
  CHECK(status_of(receive(kept, 3s, complete)) == 200);

  // Idle connections until the child has no descriptor left; the rest wait in its accept queue.
  std::vector<int> fillers;
  for (int i = 0; i < 6; ++i) fillers.push_back(connect_loopback(port));
  std::this_thread::sleep_for(500ms);
  const double cpu_before = cpu_seconds(child);

  // The connection it has is still served.
  REQUIRE(send_all(kept, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
  CHECK(status_of(receive(kept, 3s, complete)) == 200);
  // A new one waits: it cannot be accepted now.
  const int waiting = connect_loopback(port);
  REQUIRE(send_all(waiting, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  CHECK(receive(waiting, 1500ms, complete).empty());
  // No busy loop while paused: well under a tenth of a core over these 1.5 s.
  const double cpu_paused = cpu_seconds(child) - cpu_before;
  CHECK(cpu_paused < 0.15);

  // Descriptors free up: the waiting client is answered within the backoff's cap (about 1 s).
  for (int fd : fillers) ::close(fd);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string answer = receive(waiting, 5s, complete);
  CHECK(status_of(answer) == 200);
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
  ::close(waiting);
  REQUIRE(send_all(kept, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
  CHECK(status_of(receive(kept, 3s, complete)) == 200);
  ::close(kept);

  ::kill(child, SIGTERM);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  reap.pid = 0;  // reaped
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const std::string log = drain_pipe(log_pipe[0]);
  CAPTURE(log);
  // Logged once per episode (a warning when it starts, a line when it ends), never per retry: the
  // 1.5 s pause alone took about eight retries. Freeing the descriptors may start a second short
  // episode, as the queued connections are accepted faster than their sessions close.
  const std::size_t episodes = count(log, "accept failed");
  CHECK(episodes >= 1);
  CHECK(episodes <= 2);
  CHECK(count(log, "accepting new connections again") == episodes);
  CHECK(log.find("Too many open files") != std::string::npos);
}
