// Where security events go: the EventSink interface an application may implement, and the
// built-in sinks (a file, standard output, a syslog collector over UDP or TCP).
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gatehouse/security_event.hpp"

namespace gatehouse {

/// Receives formatted events. A sink is called only from its SecurityEvents' background thread,
/// never from two threads at once, so it needs no lock; it may block briefly (a slow sink delays
/// other sinks and fills the queue, then events are dropped and counted: requests never wait).
/// An exception from a sink is caught and counted (SecurityEventsStats::sink_errors).
class EventSink {
 public:
  virtual ~EventSink() = default;
  /// One event; `line` is it in the reporter's format (ECS JSON or CEF), without a newline.
  virtual void write(const SecurityEvent& event, std::string_view line) = 0;
  /// After each batch of writes, and about ten times a second while idle: push out what is
  /// buffered, reconnect when due. Default: nothing.
  virtual void flush() {}
  /// Asked by SecurityEvents::reopen (log rotation): reopen files. Default: nothing.
  virtual void reopen() {}
};

struct FileEventSinkOptions {
  std::string path{};       ///< appended to; created (mode 0640) when missing
};

/// One line per event, appended to a file; reopen() opens the path again (after logrotate moved
/// the file away). Lines are written in batches with one write(2) each.
class FileEventSink final : public EventSink {
 public:
  /// Opens the file; throws std::system_error when it cannot.
  explicit FileEventSink(FileEventSinkOptions options);
  ~FileEventSink() override;
  void write(const SecurityEvent& event, std::string_view line) override;
  void flush() override;
  void reopen() override;
  const FileEventSinkOptions& options() const noexcept { return options_; }

 private:
  FileEventSinkOptions options_;
  int fd_ = -1;
  std::string pending_;
};

/// One line per event on standard output (for containers whose runtime collects stdout).
class StdoutEventSink final : public EventSink {
 public:
  void write(const SecurityEvent& event, std::string_view line) override;
  void flush() override;

 private:
  std::string pending_;
};

enum class SyslogTransport : unsigned char {
  udp,  ///< RFC 5426: one datagram per message
  tcp,  ///< RFC 6587 octet counting: "<length> <message>"
};

struct SyslogEventSinkOptions {
  SyslogTransport transport = SyslogTransport::udp;
  std::string address = "127.0.0.1";  ///< the collector's IPv4 or IPv6 address (a literal)
  std::uint16_t port = 514;
  /// kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, audit,
  /// alert, clock, local0..local7.
  std::string facility = "authpriv";
  std::string app_name = "gatehouse";  ///< APP-NAME: 1..48 printable ASCII characters
  std::string hostname{};              ///< HOSTNAME; empty: this machine's name
  /// TCP: bytes held while the collector is slow or away; messages beyond are dropped (counted).
  std::size_t max_buffer_bytes = 1 << 20;
  std::chrono::milliseconds connect_timeout{1000};
  /// TCP reconnects after 100 ms, doubling up to this.
  std::chrono::milliseconds max_backoff{30'000};
};

/// What a syslog sink did.
struct SyslogEventSinkStats {
  std::uint64_t sent = 0;      ///< messages handed to the kernel
  std::uint64_t dropped = 0;   ///< messages lost: buffer full, send error, cut by a lost connection
  std::uint64_t connects = 0;  ///< TCP connections established
};

/// RFC 5424 messages to a syslog collector (rsyslog, syslog-ng, Wazuh, a SIEM's syslog input):
/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`, with PRI from the facility and a
/// severity from the event (warning for failures and alerts, notice otherwise), MSGID the event
/// kind, MSG the formatted line. TCP connects in the background and reconnects with backoff;
/// nothing here ever waits on a worker thread.
class SyslogEventSink final : public EventSink {
 public:
  /// Throws std::invalid_argument for an address that is not an IP literal, an unknown facility
  /// or a bad app name. Connects lazily (first flush).
  explicit SyslogEventSink(SyslogEventSinkOptions options);
  ~SyslogEventSink() override;
  void write(const SecurityEvent& event, std::string_view line) override;
  void flush() override;
  /// Safe from any thread.
  SyslogEventSinkStats stats() const noexcept;
  const SyslogEventSinkOptions& options() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The facility code (0..23) of a facility name, -1 for an unknown name.
int syslog_facility(std::string_view name) noexcept;

}  // namespace gatehouse
