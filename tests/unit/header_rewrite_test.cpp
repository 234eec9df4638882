#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "gatehouse/middleware/header_rewrite.hpp"
#include "gatehouse/testing.hpp"

using namespace gatehouse;
namespace gt = gatehouse::testing;

TEST_CASE("request edits apply in the order remove, set, append") {
  HeaderRewrite mw({.request = {.set = {{"X-Env", "prod"}, {"x-tag", "one"}},
                                .append = {{"x-tag", "two"}, {"via", "gatehouse"}},
                                .remove = {"x-tag", "Cookie", "x-missing"}}});
  auto ex = gt::exchange("GET", "/", {{"cookie", "a=1"}, {"x-env", "dev"}, {"X-Tag", "client"}, {"via", "proxy-1"}});
  CHECK(mw.on_request(ex).is_next());
  const Headers& h = ex.request().headers();
  CHECK_FALSE(h.contains("cookie"));
  CHECK(h.count("x-env") == 1);
  CHECK(h.get("x-env") == "prod");
  // "x-tag" was removed first, then set, then appended to: the client's value is gone.
  std::vector<std::string_view> tags;
  for (auto f : h)
    if (iequals(f.name, "x-tag")) tags.push_back(f.value);
  CHECK(tags == std::vector<std::string_view>{"one", "two"});
  CHECK(h.count("via") == 2);
  // Response edits are not applied to the request.
  CHECK(ex.response().headers().empty());
}

TEST_CASE("response edits apply in on_response only, in a chain too") {
  auto mw = std::make_shared<HeaderRewrite>(HeaderRewriteOptions{
      .request = {.set = {{"x-forwarded-by", "gh"}}},
      .response = {.set = {{"x-served-by", "gatehouse"}}, .append = {{"cache-control", "no-transform"}}, .remove = {"server"}}});
  gt::FakeUpstream up;
  Response r(Status::ok);
  r.headers().add("Server", "nginx/1.2");
  r.headers().add("cache-control", "max-age=60");
  up.respond_with(std::move(r), "hi");
  auto ex = gt::exchange("GET", "/");
  auto result = gt::run_chain({mw}, ex, &up);
  CHECK(up.received().at(0).headers.get("x-forwarded-by") == "gh");
  CHECK_FALSE(up.received().at(0).headers.contains("x-served-by"));
  CHECK_FALSE(result.headers.contains("server"));
  CHECK(result.headers.get("x-served-by") == "gatehouse");
  CHECK(result.headers.count("cache-control") == 2);
  CHECK(result.body == "hi");
}

TEST_CASE("edits that would break the header block are refused up front") {
  CHECK_THROWS_AS(HeaderRewrite({.request = {.set = {{"x-a", "1\r\nx-injected: 2"}}}}), std::invalid_argument);
  HeaderRewriteOptions bad_name;
  bad_name.response.append = {{"bad name", "1"}};
  CHECK_THROWS_AS(HeaderRewrite{bad_name}, std::invalid_argument);
  HeaderRewriteOptions empty_name;
  empty_name.response.remove = {""};
  CHECK_THROWS_AS(HeaderRewrite{empty_name}, std::invalid_argument);
  CHECK_NOTHROW(HeaderRewrite({.request = {.set = {{"x-a", "tab\tand obs-text \xe9"}}}}));
}
