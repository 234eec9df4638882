#include <doctest/doctest.h>

#include "server/router.hpp"

using namespace gatehouse;
using namespace gatehouse::detail;

namespace {
Route named(std::string name, std::string host, std::string path, bool prefix = true, std::vector<std::string> methods = {}) {
  Route r;
  r.name = std::move(name);
  r.host = std::move(host);
  r.path = std::move(path);
  r.prefix = prefix;
  r.methods = std::move(methods);
  r.origin = [](Exchange&) { return Flow::next(); };
  return r;
}
std::string pick(const Router& router, std::string_view host, std::string_view path, std::string_view method = "GET") {
  bool mismatch = false;
  const auto* r = router.match(host, path, method, mismatch);
  if (!r) return mismatch ? "405" : "404";
  return r->route.name;
}
}  // namespace

TEST_CASE("the most specific route wins") {
  Router router({named("root", "", "/"), named("api", "", "/api"), named("api-v2", "", "/api/v2"),
                 named("exact", "", "/api/v2/status", false), named("host", "admin.test", "/"),
                 named("wild", "*.tenant.test", "/"), named("get-only", "", "/ro", true, {"GET"})},
                {});
  CHECK(pick(router, "x", "/") == "root");
  CHECK(pick(router, "x", "/api") == "api");
  CHECK(pick(router, "x", "/api/users") == "api");
  CHECK(pick(router, "x", "/apix") == "root");  // prefixes match on segment boundaries
  CHECK(pick(router, "x", "/api/v2/x") == "api-v2");
  CHECK(pick(router, "x", "/api/v2/status") == "exact");
  CHECK(pick(router, "x", "/api/v2/status/more") == "api-v2");
  CHECK(pick(router, "ADMIN.test", "/api") == "host");
  CHECK(pick(router, "a.tenant.test", "/api") == "wild");
  CHECK(pick(router, "tenant.test", "/api") == "api");  // a wildcard needs a subdomain
  CHECK(pick(router, "x", "/ro/x", "GET") == "get-only");
  CHECK(pick(router, "x", "/ro/x", "POST") == "root");
}

TEST_CASE("no route, and a method that no route takes") {
  Router router({named("get-only", "", "/ro", true, {"GET"})}, {});
  CHECK(pick(router, "x", "/other") == "404");
  CHECK(pick(router, "x", "/ro", "DELETE") == "405");
}
