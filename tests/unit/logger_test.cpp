// The logging seam: the default line format, the process-wide logger, per-object loggers, and real
// messages from Authenticate and RemoteKeySource reaching an installed logger.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gatehouse/auth/api_key_verifier.hpp"
#include "gatehouse/auth/remote_key_source.hpp"
#include "gatehouse/logger.hpp"
#include "gatehouse/middleware/authenticate.hpp"
#include "gatehouse/testing.hpp"
#include "support/capture_logger.hpp"
#include "util/log.hpp"

using namespace gatehouse;
namespace gt = gatehouse::testing;
using gatehouse::test::CaptureLogger;
using namespace std::chrono_literals;

namespace {

// Installs a logger process-wide for one test and puts the previous one back.
struct InstalledLogger {
  std::shared_ptr<Logger> previous = logger();
  explicit InstalledLogger(std::shared_ptr<Logger> l) { set_logger(std::move(l)); }
  ~InstalledLogger() { set_logger(previous); }
};

std::string format(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {}) {
  return detail::format_log_line(level, message, std::span<const LogField>(fields.begin(), fields.size()));
}

std::shared_ptr<const Middleware> authenticate(std::shared_ptr<Logger> own = nullptr) {
  AuthenticateOptions o;
  o.verifiers = {std::make_shared<const auth::ApiKeyVerifier>(
      auth::ApiKeyVerifierOptions{.keys = {{auth::ApiKeyVerifier::hash("the-right-key"), "svc", {}, ""}}})};
  o.source = CredentialSource::header("x-api-key");
  o.logger = std::move(own);
  return std::make_shared<const Authenticate>(std::move(o));
}

class ThrowingLogger final : public Logger {
 public:
  void log(LogLevel, std::string_view, std::span<const LogField>) override { throw std::runtime_error("disk full"); }
};

}  // namespace

TEST_CASE("logger: the default line is one line, with the level, the message and key=value fields") {
  CHECK(format(LogLevel::warning, "keys: fetch failed") == "gatehouse: warning: keys: fetch failed\n");
  CHECK(format(LogLevel::info, "authenticate: credential refused",
               {{"request_id", "abc"}, {"route", ""}, {"error", "the token has expired"}, {"detail", "a=\"b\\c"}}) ==
        "gatehouse: info: authenticate: credential refused request_id=abc route=\"\" "
        "error=\"the token has expired\" detail=\"a=\\\"b\\\\c\"\n");
  // Control bytes never end the line early, in the message or in a field.
  CHECK(format(LogLevel::error, "a\nb", {{"k", "x\r\ny"}}) == "gatehouse: error: a\\x0ab k=x\\x0d\\x0ay\n");
  CHECK(to_string(LogLevel::debug) == "debug");

  const StderrLogger quiet(LogLevel::warning);
  CHECK_FALSE(quiet.enabled(LogLevel::info));
  CHECK(quiet.enabled(LogLevel::error));
  CHECK_FALSE(null_logger()->enabled(LogLevel::error));
}

TEST_CASE("logger: set_logger replaces the process-wide logger; nullptr brings the default back") {
  const auto previous = logger();
  auto capture = std::make_shared<CaptureLogger>();
  set_logger(capture);
  CHECK(logger() == capture);
  set_logger(nullptr);
  CHECK(logger() != nullptr);
  CHECK(dynamic_cast<StderrLogger*>(logger().get()) != nullptr);
  set_logger(previous);
}

TEST_CASE("logger: a refused credential reaches the installed logger, with the request id") {
  auto capture = std::make_shared<CaptureLogger>();
  InstalledLogger installed(capture);
  const std::vector<std::shared_ptr<const Middleware>> chain = {authenticate()};  // no logger of its own

  auto ex = gt::exchange("GET", "/", {{"x-api-key", "a-wrong-key"}});
  ex.set_request_id("req\n42");
  CHECK(gt::run_chain(chain, ex).status == 401);
  const auto entries = capture->entries();
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].level == LogLevel::info);
  CHECK(entries[0].message == "authenticate: credential refused");
  CHECK(entries[0].field("request_id") == "req?42");  // a client-sent id cannot split the line
  CHECK(entries[0].field("error") == make_error_code(auth::TokenError::unknown_key).message());
  CHECK(entries[0].field("detail").find("unknown API key") == 0);

  SUBCASE("an object's own logger takes precedence") {
    auto own = std::make_shared<CaptureLogger>();
    const std::vector<std::shared_ptr<const Middleware>> quiet = {authenticate(own)};
    auto again = gt::exchange("GET", "/", {{"x-api-key", "another-wrong-key"}});
    CHECK(gt::run_chain(quiet, again).status == 401);
    CHECK(own->entries().size() == 1);
    CHECK(capture->entries().size() == 1);  // unchanged
  }
  SUBCASE("a logger that throws changes nothing for the request") {
    const std::vector<std::shared_ptr<const Middleware>> throwing = {authenticate(std::make_shared<ThrowingLogger>())};
    auto again = gt::exchange("GET", "/", {{"x-api-key", "another-wrong-key"}});
    CHECK(gt::run_chain(throwing, again).status == 401);
  }
}

TEST_CASE("logger: a failed key fetch reaches the installed logger") {
  auto capture = std::make_shared<CaptureLogger>();
  InstalledLogger installed(capture);
  // Nothing listens on port 1 of the loopback: the connection is refused at once, no network used.
  auth::RemoteKeySourceOptions o;
  o.jwks_uri = "http://127.0.0.1:1/jwks";
  o.allow_plain_http = true;
  o.fetch_timeout = 2s;
  auto keys = std::make_shared<auth::RemoteKeySource>(std::move(o));
  CHECK_FALSE(keys->wait_ready(5s));
  std::vector<CaptureLogger::Entry> entries;
  for (int i = 0; i < 500 && entries.empty(); ++i) {  // logged just after wait_ready() wakes up
    std::this_thread::sleep_for(10ms);
    entries = capture->entries();
  }
  REQUIRE_FALSE(entries.empty());
  CHECK(entries[0].level == LogLevel::error);  // no keys at all yet: every token is refused
  CHECK(entries[0].message.find("http://127.0.0.1:1/jwks: fetch failed: cannot connect to 127.0.0.1:1") == 0);
  CHECK(entries[0].message.find("(no keys yet: tokens are refused)") != std::string::npos);
  CHECK(keys->stats().failures >= 1);
}
