// SyslogEventSink: RFC 5424 messages to a collector over UDP (RFC 5426) or TCP with octet
// counting (RFC 6587). Runs on the SecurityEvents background thread only, and never blocks it:
// sockets are non-blocking, a TCP connect is checked at each flush (about ten times a second) and
// abandoned after connect_timeout, a lost connection is retried with exponential backoff, and
// while the collector is away messages wait in a bounded buffer (beyond it they are dropped and
// counted).

#include "observe/syslog_sink.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <stdexcept>

#include "gatehouse/security_event_sinks.hpp"
#include "observe/event_format.hpp"
#include "util/log.hpp"

namespace gatehouse {
namespace detail {

std::string syslog_header_field(std::string_view s, std::size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() == max) break;
    if (c > 32 && c < 127) out += c;
  }
  if (out.empty()) return std::string(1, '-');  // (assigning "-" trips a GCC 12 -Wrestrict false positive)
  return out;
}

std::string syslog_message(int facility, int severity, std::chrono::system_clock::time_point time,
                           std::string_view hostname, std::string_view app_name, std::string_view procid,
                           std::string_view msgid, std::string_view msg) {
  std::string out;
  out.reserve(msg.size() + 128);
  out += '<';
  out += std::to_string(facility * 8 + severity);
  out += ">1 ";
  out += rfc3339_utc(time, 6);
  out += ' ';
  out += syslog_header_field(hostname, 255);
  out += ' ';
  out += syslog_header_field(app_name, 48);
  out += ' ';
  out += syslog_header_field(procid, 128);
  out += ' ';
  out += syslog_header_field(msgid, 32);
  out += " - ";
  out += msg;
  return out;
}

std::string octet_counted(std::string_view message) {
  std::string out = std::to_string(message.size());
  out += ' ';
  out += message;
  return out;
}

}  // namespace detail

namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;
constexpr milliseconds kFirstBackoff{100};

constexpr std::array<std::string_view, 24> kFacilities{
    "kern", "user",  "mail",  "daemon", "auth",   "syslog", "lpr",    "news",   "uucp",   "cron",   "authpriv", "ftp",
    "ntp",  "audit", "alert", "clock",  "local0", "local1", "local2", "local3", "local4", "local5", "local6",   "local7"};

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "-";
  return buf;
}

}  // namespace

int syslog_facility(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kFacilities.size(); ++i)
    if (kFacilities[i] == name) return static_cast<int>(i);
  return -1;
}

struct SyslogEventSink::Impl {
  SyslogEventSinkOptions options;
  int facility = 10;
  std::string hostname, procid;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  int fd = -1;
  bool connecting = false;   // TCP: connect() in progress
  bool was_connected = false;
  steady::time_point connect_started{}, next_attempt{};
  milliseconds backoff = kFirstBackoff;
  std::deque<std::string> frames;  // TCP: octet-counted frames not yet sent
  std::size_t offset = 0;          // bytes of frames.front() already sent
  std::size_t buffered = 0;
  std::atomic<std::uint64_t> sent{0}, dropped{0}, connects{0};

  bool tcp() const noexcept { return options.transport == SyslogTransport::tcp; }

  void close_socket() noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
    connecting = false;
  }

  // Lost the TCP connection (or never got it): a frame cut in the middle cannot be resumed on a
  // new connection, the rest wait; the next attempt comes after the backoff.
  void fail(const char* what, int err) noexcept {
    close_socket();
    if (offset > 0) {
      buffered -= frames.front().size();
      frames.pop_front();
      offset = 0;
      dropped.fetch_add(1, std::memory_order_relaxed);
    }
    next_attempt = steady::now() + backoff;
    backoff = std::min(backoff * 2, options.max_backoff);
    if (was_connected) {
      was_connected = false;
      detail::log({}, LogLevel::warning, "security events: syslog collector connection lost",
                  {{"address", options.address}, {"error", what}, {"detail", std::strerror(err)}});
    }
  }

  bool open_socket(int type) noexcept {
    fd = ::socket(addr.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd >= 0;
  }

  void start_connect() noexcept {
    if (!open_socket(SOCK_STREAM)) return fail("socket", errno);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), addr_len) == 0) {
      connected();
      return;
    }
    if (errno != EINPROGRESS) return fail("connect", errno);
    connecting = true;
    connect_started = steady::now();
  }

  void connected() noexcept {
    connecting = false;
    was_connected = true;
    backoff = kFirstBackoff;
    connects.fetch_add(1, std::memory_order_relaxed);
  }

  // TCP: true when the connection is up (after finishing a connect in progress).
  bool ready() noexcept {
    if (fd < 0) {
      if (steady::now() < next_attempt) return false;
      start_connect();
      if (fd < 0) return false;
      if (!connecting) return true;
    }
    pollfd p{fd, static_cast<short>(connecting ? POLLOUT : (POLLIN | POLLRDHUP)), 0};
    const int n = ::poll(&p, 1, 0);
    if (connecting) {
      if (n <= 0) {
        if (steady::now() - connect_started > options.connect_timeout) fail("connect", ETIMEDOUT);
        return false;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        fail("connect", err);
        return false;
      }
      connected();
      return true;
    }
    // A collector never talks back: readable means it closed (or reset) the connection.
    if (n > 0 && (p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR))) {
      char b[256];
      const ssize_t r = ::recv(fd, b, sizeof b, MSG_DONTWAIT);
      if (r <= 0 && !(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
        fail("collector closed the connection", r == 0 ? ECONNRESET : errno);
        return false;
      }
    }
    return true;
  }

  void send_frames() noexcept {
    while (!frames.empty()) {
      const std::string& f = frames.front();
      const ssize_t n = ::send(fd, f.data() + offset, f.size() - offset, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        return fail("send", errno);
      }
      offset += static_cast<std::size_t>(n);
      if (offset == f.size()) {
        buffered -= f.size();
        frames.pop_front();
        offset = 0;
        sent.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  void send_datagram(const std::string& msg) noexcept {
    if (fd < 0) {
      if (!open_socket(SOCK_DGRAM) ||
          ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), addr_len) != 0) {
        close_socket();
        dropped.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    for (;;) {
      if (::send(fd, msg.data(), msg.size(), MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
        sent.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      if (errno != EINTR) break;
    }
    // ECONNREFUSED reports an ICMP error for an earlier datagram: the collector is not there.
    dropped.fetch_add(1, std::memory_order_relaxed);
  }
};

SyslogEventSink::SyslogEventSink(SyslogEventSinkOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.options = std::move(options);
  m.facility = syslog_facility(m.options.facility);
  if (m.facility < 0) throw std::invalid_argument("SyslogEventSink: unknown facility \"" + m.options.facility + "\"");
  const std::string& app = m.options.app_name;
  if (app.empty() || app.size() > 48 || !std::all_of(app.begin(), app.end(), [](char c) { return c > 32 && c < 127; }))
    throw std::invalid_argument("SyslogEventSink: app_name must be 1..48 printable ASCII characters");
  if (m.options.port == 0) throw std::invalid_argument("SyslogEventSink: port must not be 0");
  auto* v4 = reinterpret_cast<sockaddr_in*>(&m.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&m.addr);
  if (::inet_pton(AF_INET, m.options.address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(m.options.port);
    m.addr_len = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, m.options.address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(m.options.port);
    m.addr_len = sizeof(sockaddr_in6);
  } else {
    throw std::invalid_argument("SyslogEventSink: address \"" + m.options.address + "\" is not an IP address");
  }
  m.hostname = m.options.hostname.empty() ? host_name() : m.options.hostname;
  m.procid = std::to_string(::getpid());
  if (m.options.connect_timeout <= milliseconds::zero()) m.options.connect_timeout = milliseconds(1000);
  if (m.options.max_backoff < kFirstBackoff) m.options.max_backoff = kFirstBackoff;
}

SyslogEventSink::~SyslogEventSink() {
  // A last chance for what is buffered, without waiting.
  if (impl_->tcp() && impl_->fd >= 0 && !impl_->connecting) impl_->send_frames();
  impl_->close_socket();
}

void SyslogEventSink::write(const SecurityEvent& event, std::string_view line) {
  Impl& m = *impl_;
  std::string msg = detail::syslog_message(m.facility, detail::syslog_severity(event), event.time, m.hostname,
                                           m.options.app_name, m.procid, to_string(event.kind), line);
  if (!m.tcp()) {
    m.send_datagram(msg);
    return;
  }
  std::string frame = detail::octet_counted(msg);
  if (m.buffered + frame.size() > m.options.max_buffer_bytes) {
    m.dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  m.buffered += frame.size();
  m.frames.push_back(std::move(frame));
}

void SyslogEventSink::flush() {
  Impl& m = *impl_;
  if (!m.tcp() || m.frames.empty()) return;
  if (m.ready()) m.send_frames();
}

SyslogEventSinkStats SyslogEventSink::stats() const noexcept {
  return {impl_->sent.load(std::memory_order_relaxed), impl_->dropped.load(std::memory_order_relaxed),
          impl_->connects.load(std::memory_order_relaxed)};
}

const SyslogEventSinkOptions& SyslogEventSink::options() const noexcept { return impl_->options; }

}  // namespace gatehouse
