// FileEventSink and StdoutEventSink: one line per event, written in batches (one write(2) per
// flush), so a line is never split between two writes of different processes appending to the
// same file.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "gatehouse/security_event_sinks.hpp"

namespace gatehouse {
namespace {

constexpr std::size_t kBatchBytes = 64 * 1024;  // write out sooner than the end of the batch

int open_append(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot open security event file " + path);
  return fd;
}

// Writes all of `data` (retrying partial writes and EINTR), then empties it. Throws on error; the
// bytes are dropped either way, so a failing disk never makes the buffer grow.
void write_out(int fd, std::string& data, const char* what) {
  std::size_t done = 0;
  int err = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  data.clear();
  if (err) throw std::system_error(err, std::generic_category(), what);
}

}  // namespace

FileEventSink::FileEventSink(FileEventSinkOptions options) : options_(std::move(options)) {
  fd_ = open_append(options_.path);
}

FileEventSink::~FileEventSink() {
  try {
    if (fd_ >= 0 && !pending_.empty()) write_out(fd_, pending_, "");
  } catch (...) {
  }
  if (fd_ >= 0) ::close(fd_);
}

void FileEventSink::write(const SecurityEvent&, std::string_view line) {
  pending_.append(line);
  pending_ += '\n';
  if (pending_.size() >= kBatchBytes) flush();
}

void FileEventSink::flush() {
  if (pending_.empty()) return;
  if (fd_ < 0) {
    pending_.clear();
    throw std::system_error(EBADF, std::generic_category(), "security event file " + options_.path + " is not open");
  }
  write_out(fd_, pending_, "cannot write the security event file");
}

void FileEventSink::reopen() {
  // What was written before the rotation still goes to the old file.
  if (fd_ >= 0 && !pending_.empty()) write_out(fd_, pending_, "cannot write the security event file");
  const int fd = open_append(options_.path);  // on failure keep writing to the old one
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

void StdoutEventSink::write(const SecurityEvent&, std::string_view line) {
  pending_.append(line);
  pending_ += '\n';
  if (pending_.size() >= kBatchBytes) flush();
}

void StdoutEventSink::flush() {
  if (!pending_.empty()) write_out(STDOUT_FILENO, pending_, "cannot write security events to stdout");
}

}  // namespace gatehouse
