#include <doctest/doctest.h>

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gatehouse/middleware/request_id.hpp"
#include "gatehouse/testing.hpp"
#include "util/fast_random.hpp"

using namespace gatehouse;
namespace gt = gatehouse::testing;

namespace {

bool is_generated(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

void trust(Exchange& ex) { gatehouse::testing::set_peer(ex, asio::ip::tcp::endpoint(asio::ip::make_address("10.0.0.1"), 5000), true); }

}  // namespace

TEST_CASE("generated ids are 32 lowercase hex characters and unique, across threads too") {
  std::set<std::string> ids;
  std::mutex m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::vector<std::string> mine;
      for (int i = 0; i < 2000; ++i) mine.push_back(RequestId::generate());
      std::lock_guard lock(m);
      ids.insert(mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ids.size() == 8000);
  for (const auto& id : ids) REQUIRE(is_generated(id));
}

TEST_CASE("an untrusted client's id is replaced, on the exchange, the request and the response") {
  RequestId mw;
  auto ex = gt::exchange("GET", "/", {{"X-Request-Id", "client-chosen"}, {"x-request-id", "second"}});
  CHECK(mw.on_request(ex).is_next());
  CHECK(is_generated(ex.request_id()));
  CHECK(ex.request().headers().count("x-request-id") == 1);
  CHECK(ex.request().headers().get("x-request-id") == ex.request_id());
  CHECK(mw.on_response(ex).is_next());
  CHECK(ex.response().headers().get("x-request-id") == ex.request_id());

  auto plain = gt::exchange("GET", "/");
  mw.on_request(plain);
  CHECK(is_generated(plain.request_id()));
  CHECK(plain.request_id() != ex.request_id());
}

TEST_CASE("a trusted proxy's id is kept only when it is well-formed") {
  RequestId mw;
  const std::string longest(128, 'a');
  for (std::string id : {std::string("abc-123"), std::string("A.b_c:d-9"), longest}) {
    auto ex = gt::exchange("GET", "/", {{"x-request-id", id}});
    trust(ex);
    mw.on_request(ex);
    CHECK(ex.request_id() == id);
    CHECK(ex.request().headers().get("x-request-id") == id);
  }
  for (std::string id : {std::string(""), std::string(129, 'a'), std::string("a b"), std::string("a/b"),
                         std::string("id\r\nx: y"), std::string("caf\xc3\xa9"), std::string("a,b")}) {
    CAPTURE(id);
    auto ex = gt::exchange("GET", "/", {{"x-request-id", id}});
    trust(ex);
    mw.on_request(ex);
    CHECK(is_generated(ex.request_id()));
    CHECK(ex.request().headers().get("x-request-id") == ex.request_id());
  }
  auto none = gt::exchange("GET", "/");
  trust(none);
  mw.on_request(none);
  CHECK(is_generated(none.request_id()));
}

TEST_CASE("a custom header name, and the id travels upstream and back in a chain") {
  auto mw = std::make_shared<RequestId>("Correlation-Id");
  gt::FakeUpstream up;
  auto ex = gt::exchange("GET", "/", {{"x-request-id", "ignored"}});
  auto r = gt::run_chain({mw}, ex, &up);
  REQUIRE(up.received().size() == 1);
  const auto sent = up.received()[0].headers.get("correlation-id");
  REQUIRE(sent);
  CHECK(is_generated(*sent));
  CHECK(r.headers.get("correlation-id") == *sent);
  CHECK(ex.request_id() == *sent);
  CHECK(up.received()[0].headers.get("x-request-id") == "ignored");  // not ours to touch
  CHECK_THROWS_AS(RequestId(""), std::invalid_argument);
}

TEST_CASE("ids are written as 16 lowercase hex digits per 64 bits, most significant first") {
  char out[17] = {};
  gatehouse::detail::write_hex64(out, 0x0123456789abcdefull);
  CHECK(std::string_view(out, 16) == "0123456789abcdef");
  gatehouse::detail::write_hex64(out, 0);
  CHECK(std::string_view(out, 16) == "0000000000000000");
  gatehouse::detail::write_hex64(out, ~0ull);
  CHECK(std::string_view(out, 16) == "ffffffffffffffff");
  gatehouse::detail::write_hex64(out, 0xa0b1c2d3e4f50617ull);
  CHECK(std::string_view(out, 16) == "a0b1c2d3e4f50617");
}
