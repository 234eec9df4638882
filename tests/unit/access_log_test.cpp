#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gatehouse/middleware/access_log.hpp"
#include "gatehouse/testing.hpp"
#include "support/temp_dir.hpp"

using namespace gatehouse;
namespace gt = gatehouse::testing;
namespace fs = std::filesystem;

namespace {

using gatehouse::test::TempDir;

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void check_fields(const nlohmann::json& j) {
  for (const char* key : {"time", "request_id", "client", "method", "path", "route", "upstream"}) {
    CAPTURE(key);
    REQUIRE(j.contains(key));
    CHECK(j.at(key).is_string());
  }
  for (const char* key : {"status", "bytes_in", "bytes_out"}) {
    CAPTURE(key);
    REQUIRE(j.contains(key));
    CHECK(j.at(key).is_number_unsigned());
  }
  REQUIRE(j.contains("duration_ms"));
  CHECK(j.at("duration_ms").is_number());
  static const std::regex rfc3339(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  CHECK(std::regex_match(j.at("time").get<std::string>(), rfc3339));
}

}  // namespace

TEST_CASE("one JSON line per request with the documented fields") {
  TempDir dir;
  const fs::path file = dir.dir / "access.log";
  auto log = std::make_shared<AccessLog>(AccessLogOptions{.path = file.string()});

  auto ok = gt::exchange("POST", "/orders?token=secret");
  gatehouse::testing::set_route_name(ok, "orders");
  gatehouse::testing::set_upstream_endpoint(ok, "10.0.0.5:8080");
  gt::run_chain({log}, ok, nullptr, "hello");

  auto failed = gt::exchange("GET", "/slow");
  failed.response().set_status(Status::gateway_timeout);
  log->on_complete(failed, std::make_error_code(std::errc::timed_out));

  log->flush();
  CHECK(log->stats().written == 2);
  CHECK(log->stats().dropped == 0);
  const auto lines = read_lines(file);
  REQUIRE(lines.size() == 2);
  for (const auto& line : lines) check_fields(nlohmann::json::parse(line));
  // Three decimals, always.
  CHECK(std::regex_search(lines[0], std::regex(R"("duration_ms":\d+\.\d{3}[,}])")));

  const auto first = nlohmann::json::parse(lines[0]);
  CHECK(first.at("request_id") == "test-id");
  CHECK(first.at("client") == "127.0.0.1");
  CHECK(first.at("method") == "POST");
  CHECK(first.at("path") == "/orders");  // the query (and its token) stays out of the log
  CHECK(lines[0].find("secret") == std::string::npos);
  CHECK(first.at("route") == "orders");
  CHECK(first.at("upstream") == "10.0.0.5:8080");
  CHECK(first.at("status") == 200);
  CHECK(first.at("bytes_in") == 5);
  CHECK(first.at("bytes_out") == 2);
  CHECK_FALSE(first.contains("error"));

  const auto second = nlohmann::json::parse(lines[1]);
  CHECK(second.at("status") == 504);
  CHECK(second.at("error") == std::make_error_code(std::errc::timed_out).message());
}

TEST_CASE("control bytes and invalid UTF-8 in the path are escaped; the line stays valid JSON") {
  TempDir dir;
  const fs::path file = dir.dir / "access.log";
  AccessLog log({.path = file.string()});
  auto ex = gt::exchange("GET", std::string_view("/a\x01\"b\\\n\xff\xc3(\xe2\x82\xac\x7f\0z", 16));
  gatehouse::testing::set_route_name(ex, "r\tq");
  log.on_complete(ex, {});
  log.flush();
  std::ifstream in(file, std::ios::binary);
  const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(!raw.empty());
  CHECK(raw.back() == '\n');
  for (std::size_t i = 0; i + 1 < raw.size(); ++i) {
    CAPTURE(i);
    const auto c = static_cast<unsigned char>(raw[i]);
    CHECK((c >= 0x20 && c != 0x7f));
  }
  const auto j = nlohmann::json::parse(raw);
  check_fields(j);
  CHECK(j.at("path") == std::string("/a\x01\"b\\\n\xef\xbf\xbd\xef\xbf\xbd(\xe2\x82\xac\x7f\0z", 20));
  CHECK(j.at("route") == "r\tq");
}

TEST_CASE("flush waits for queued lines; the destructor writes what is left") {
  TempDir dir;
  const fs::path file = dir.dir / "access.log";
  {
    AccessLog log({.path = file.string(), .queue_capacity = 1024});
    auto ex = gt::exchange("GET", "/one");
    log.on_complete(ex, {});
    log.flush();
    CHECK(read_lines(file).size() == 1);
    log.flush();  // nothing new: returns at once
    // Long enough for the idle writer to block until a worker wakes it.
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    log.on_complete(ex, {});
    log.flush();
    CHECK(read_lines(file).size() == 2);
    for (int i = 0; i < 500; ++i) log.on_complete(ex, {});
  }
  const auto lines = read_lines(file);
  CHECK(lines.size() == 502);
  for (const auto& line : lines) CHECK(nlohmann::json::parse(line).at("path").is_string());
}

TEST_CASE("a log that cannot be opened fails at construction") {
  CHECK_THROWS_AS(AccessLog({.path = "/nonexistent-dir-gatehouse/x/access.log"}), std::system_error);
}

TEST_CASE("a full queue drops and counts lines, never blocks, and loses none it accepted") {
  // The sink is a FIFO nobody reads yet: the writer thread blocks once the pipe is full, so the
  // four-slot queue must overflow while four workers log concurrently.
  TempDir dir;
  const fs::path fifo = dir.dir / "access.fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);  // so the log's open does not wait
  REQUIRE(reader >= 0);
  auto log = std::make_unique<AccessLog>(AccessLogOptions{.path = fifo.string(), .queue_capacity = 4});

  constexpr int kThreads = 4, kPerThread = 3000;
  std::atomic<int> ready{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      auto ex = gt::exchange("GET", "/worker/" + std::to_string(t));
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      for (int i = 0; i < kPerThread; ++i) log->on_complete(ex, {});
    });
  }
  for (auto& w : workers) w.join();  // all returned although the writer is stuck: nothing blocked

  // Now drain the pipe until the log closes it.
  std::string received;
  std::thread drain([&] {
    ::fcntl(reader, F_SETFL, ::fcntl(reader, F_GETFL) & ~O_NONBLOCK);
    char buf[65536];
    for (;;) {
      const ssize_t n = ::read(reader, buf, sizeof(buf));
      if (n <= 0) break;
      received.append(buf, static_cast<std::size_t>(n));
    }
  });
  log->flush();
  const std::uint64_t pushed = std::uint64_t{kThreads} * kPerThread;
  const AccessLogStats stats = log->stats();
  CHECK(stats.written + stats.dropped == pushed);
  CHECK(stats.dropped > 0);
  const std::uint64_t written = stats.written;
  log.reset();  // closes the write end: the reader sees end of file
  drain.join();
  ::close(reader);

  const auto lines = split_lines(received);
  CHECK(lines.size() == written);
  for (const auto& line : lines) {
    const auto j = nlohmann::json::parse(line);  // no torn or interleaved lines
    REQUIRE(j.at("path").get<std::string>().rfind("/worker/", 0) == 0);
  }
}
