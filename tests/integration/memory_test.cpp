// Memory stays bounded whatever the body size: 1 GiB up and 1 GiB down through the gateway, with
// the process's RSS measured around the transfers. Bodies stream; nothing may buffer them whole.
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>

#include "integration/fixture.hpp"
#include "support/raw_http.hpp"

using namespace gatehouse;
using namespace gatehouse::test;
using namespace std::chrono_literals;

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
constexpr std::uint64_t kBigBytes = 64ull << 20;  // ASan: smaller, and RSS is not meaningful
#else
constexpr bool kAsan = false;
constexpr std::uint64_t kBigBytes = 1ull << 30;
#endif
constexpr std::size_t kPiece = 64 * 1024;
constexpr auto kIoTimeout = 20s;  // per read or write wait: generous, but nothing can hang

// A 64 KiB pattern that is not a multiple of anything the gateway uses, so misplaced bytes show.
const std::string& pattern() {
  static const std::string p = [] {
    std::string s(kPiece, '\0');
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
    return s;
  }();
  return p;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool wait_fd(int fd, short events, milliseconds timeout) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

std::optional<std::string> read_head(int fd, std::string& buf) {
  for (;;) {
    const auto pos = buf.find("\r\n\r\n");
    if (pos != std::string::npos) {
      std::string head = buf.substr(0, pos + 4);
      buf.erase(0, pos + 4);
      return head;
    }
    if (buf.size() > 64 * 1024 || !wait_fd(fd, POLLIN, kIoTimeout)) return std::nullopt;
    char tmp[16384];
    const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return std::nullopt;
    buf.append(tmp, static_cast<std::size_t>(n));
  }
}

std::uint64_t content_length_of(const std::string& head) {
  const std::string h = lower(head);
  const auto p = h.find("\r\ncontent-length:");
  return p == std::string::npos ? 0 : std::stoull(h.substr(p + 17));
}

// Reads and discards `n` bytes (some may already be in `buf`); returns how many arrived.
std::uint64_t discard(int fd, std::string& buf, std::uint64_t n) {
  const std::uint64_t from_buf = std::min<std::uint64_t>(n, buf.size());
  buf.erase(0, from_buf);
  std::uint64_t got = from_buf;
  static thread_local char tmp[kPiece];
  while (got < n) {
    if (!wait_fd(fd, POLLIN, kIoTimeout)) break;
    const ssize_t r = ::recv(fd, tmp, std::min<std::uint64_t>(sizeof tmp, n - got), 0);
    if (r <= 0) break;
    got += static_cast<std::uint64_t>(r);
  }
  return got;
}

// Writes `n` bytes of the pattern, the byte at offset i being pattern()[i % 64 KiB].
bool send_pattern(int fd, std::uint64_t n) {
  std::uint64_t sent = 0;
  while (sent < n) {
    const std::size_t off = static_cast<std::size_t>(sent % kPiece);
    const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(kPiece - off, n - sent));
    if (!wait_fd(fd, POLLOUT, kIoTimeout)) return false;
    const ssize_t w = ::send(fd, pattern().data() + off, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (w <= 0) return false;
    sent += static_cast<std::uint64_t>(w);
  }
  return true;
}

// The upstream: POST reads and discards the body and answers with its size; GET /down/N answers
// with N bytes of the pattern. Keep-alive, until the gateway closes the connection.
void upstream(int fd) {
  std::string buf;
  while (auto head = read_head(fd, buf)) {
    if (head->rfind("POST ", 0) == 0) {
      const std::uint64_t want = content_length_of(*head);
      const std::uint64_t got = discard(fd, buf, want);
      if (got != want) return;
      const std::string body = std::to_string(got);
      if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body)) return;
    } else if (head->rfind("GET /down/", 0) == 0) {
      const std::uint64_t n = std::stoull(head->substr(10));
      if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                            std::to_string(n) + "\r\n\r\n"))
        return;
      if (!send_pattern(fd, n)) return;
    } else {
      if (!send_all(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")) return;
    }
  }
}

struct Transfer {
  int status = 0;
  std::uint64_t bytes = 0;  // upload: what the upstream says it got; download: body bytes received
  bool pattern_ok = true;   // download: every byte where it belongs
  milliseconds elapsed{};
};

Transfer upload(unsigned short port, std::uint64_t n) {
  Transfer t;
  const auto t0 = SteadyClock::now();
  const int fd = connect_loopback(port);
  send_all(fd, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                   std::to_string(n) + "\r\n\r\n");
  send_pattern(fd, n);
  const std::string r = receive(fd, kIoTimeout, [](const std::string& s) { return has_complete_response(s); });
  ::close(fd);
  t.status = status_of(r);
  const auto p = r.find("\r\n\r\n");
  if (p != std::string::npos && p + 4 < r.size()) t.bytes = std::stoull(r.substr(p + 4));
  t.elapsed = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - t0);
  return t;
}

Transfer download(unsigned short port, std::uint64_t n) {
  Transfer t;
  const auto t0 = SteadyClock::now();
  const int fd = connect_loopback(port);
  send_all(fd, "GET /down/" + std::to_string(n) + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  std::string buf;
  const auto head = read_head(fd, buf);
  if (head) {
    t.status = status_of(*head);
    const std::uint64_t want = content_length_of(*head);
    auto check = [&](const char* data, std::size_t len) {
      const std::size_t off = static_cast<std::size_t>(t.bytes % kPiece);
      std::size_t done = 0;
      while (done < len) {
        const std::size_t k = std::min(len - done, kPiece - ((off + done) % kPiece));
        if (std::memcmp(data + done, pattern().data() + (off + done) % kPiece, k) != 0) t.pattern_ok = false;
        done += k;
      }
      t.bytes += len;
    };
    check(buf.data(), buf.size());
    char tmp[kPiece];
    while (t.bytes < want + 1) {  // + 1: bytes beyond the Content-Length would be a bug too
      if (!wait_fd(fd, POLLIN, t.bytes < want ? milliseconds(kIoTimeout) : milliseconds(200))) break;
      const ssize_t r = ::recv(fd, tmp, sizeof tmp, 0);
      if (r <= 0) break;
      check(tmp, static_cast<std::size_t>(r));
    }
  }
  ::close(fd);
  t.elapsed = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - t0);
  return t;
}

}  // namespace

TEST_CASE("memory stays bounded while 1 GiB streams up and 1 GiB streams down") {
  RawServer up(upstream);
  GatewayOptions o;
  o.limits.max_body_bytes = 0;  // no limit: the body streams
  GatewayUnderTest g(o);
  g.gw->route({.path = "/", .origin = upstream_at(up.port())});
  const auto port = g.start();

  // Warm-up: buffers, pools, threads and the upstream connection exist before the measurement.
  for (int i = 0; i < 2; ++i) {
    const Transfer u = upload(port, 4 << 20);
    REQUIRE(u.status == 200);
    REQUIRE(u.bytes == (4u << 20));
    const Transfer d = download(port, 4 << 20);
    REQUIRE(d.status == 200);
    REQUIRE(d.bytes == (4u << 20));
  }
  const long before = rss_kib();

  const Transfer u = upload(port, kBigBytes);
  CHECK(u.status == 200);
  CHECK(u.bytes == kBigBytes);
  const long after_upload = rss_kib();
  const Transfer d = download(port, kBigBytes);
  CHECK(d.status == 200);
  CHECK(d.bytes == kBigBytes);
  CHECK(d.pattern_ok);
  const long after = rss_kib();

  MESSAGE("transferred " << (kBigBytes >> 20) << " MiB each way; upload " << u.elapsed.count() << " ms, download "
                         << d.elapsed.count() << " ms; RSS " << before << " KiB -> " << after_upload << " KiB (after upload) -> "
                         << after << " KiB: growth " << (after - before) << " KiB");
  if (!kAsan) {
    CHECK(after_upload - before < 8192);
    CHECK(after - before < 8192);
  }
  CHECK(up.connections() == 1);  // one upstream connection, reused throughout
}
