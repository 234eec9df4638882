// Listener-bound routes: Gateway::start() refuses a route that names a listener nobody has. (Which
// listener serves what is checked on real sockets in tests/integration/identity_token_test.cpp.)
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "gatehouse/gateway.hpp"
#include "server/router.hpp"

using namespace gatehouse;

namespace {

std::string start_error(Gateway& gw) {
  try {
    gw.start();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  FAIL("Gateway::start did not throw std::invalid_argument");
  return {};
}

Handler ok() {
  return [](Exchange&) { return Flow::respond(Status::ok); };
}

Route bound(std::string name, std::string path, std::vector<std::string> listeners = {}) {
  return {.name = std::move(name), .path = std::move(path), .origin = ok(), .listeners = std::move(listeners)};
}

std::string pick(const detail::Router& router, std::string_view path) {
  bool mismatch = false;
  const auto* r = router.match("example.test", path, "GET", mismatch);
  return r ? r->route.name : "404";
}

}  // namespace

TEST_CASE("a route naming an unknown listener is refused at start, before anything is bound") {
  Gateway gw{GatewayOptions{.workers = 1}};
  gw.listen({.port = 0, .name = "public"});
  gw.listen({.port = 0, .name = "admin"});
  gw.route({.name = "admin", .path = "/admin", .origin = ok(), .listeners = {"admin", "amdin"}});
  const std::string e = start_error(gw);
  CHECK(e.find("route \"admin\"") != std::string::npos);
  CHECK(e.find("no listener is named \"amdin\"") != std::string::npos);
  CHECK(gw.local_endpoints().empty());
}

TEST_CASE("an empty name never matches an unnamed listener") {
  Gateway gw{GatewayOptions{.workers = 1}};
  gw.listen({.port = 0});
  gw.route({.path = "/", .origin = ok(), .listeners = {""}});
  CHECK(start_error(gw).find("no listener is named \"\"") != std::string::npos);
}

TEST_CASE("each listener routes only what it serves; listeners serving the same routes share a router") {
  const std::vector<Route> routes = {bound("root", "/"), bound("api", "/api", {"public"}),
                                     bound("admin", "/admin", {"admin"}), bound("metrics", "/metrics", {"admin", "ops"})};
  const auto lr = detail::build_listener_routers(routes, {}, {"public", "admin", "", "ops", "public", "other", ""}, {});
  REQUIRE(lr.by_listener.size() == 7);
  const detail::Router& pub = *lr.by_listener[0];
  const detail::Router& admin = *lr.by_listener[1];
  const detail::Router& unnamed = *lr.by_listener[2];
  const detail::Router& ops = *lr.by_listener[3];
  CHECK(pick(pub, "/api/x") == "api");
  CHECK(pick(pub, "/") == "root");
  // Bound elsewhere: 404 here, and never the broader "/" (an admin path must not fall through to
  // a public catch-all).
  CHECK(pick(pub, "/admin") == "404");
  CHECK(pick(pub, "/admin/users") == "404");
  CHECK(pick(pub, "/metrics") == "404");
  CHECK(pick(pub, "/administrator") == "root");  // not below /admin: a different path
  CHECK(pick(admin, "/admin/users") == "admin");
  CHECK(pick(admin, "/metrics") == "metrics");
  CHECK(pick(admin, "/api") == "404");
  CHECK(pick(ops, "/metrics") == "metrics");
  CHECK(pick(ops, "/admin") == "404");
  CHECK(pick(unnamed, "/admin") == "404");  // routes bound to listeners never reach unnamed ones
  CHECK(pick(unnamed, "/api") == "404");
  CHECK(pick(unnamed, "/other") == "root");
  // public twice, and the unnamed listeners with "other" (only unbound routes): 4 routers, not 7.
  CHECK(lr.routers.size() == 4);
  CHECK(lr.by_listener[4] == &pub);
  CHECK(lr.by_listener[5] == &unnamed);
  CHECK(lr.by_listener[6] == &unnamed);

  // A bound route restricted to GET shadows GET only: POST still reaches the public route.
  Route get_admin = bound("get-admin", "/admin", {"admin"});
  get_admin.methods = {"GET"};
  Route post_admin = bound("post-admin", "/admin", {"public"});
  post_admin.methods = {"POST"};
  const auto by_method = detail::build_listener_routers({get_admin, post_admin, bound("root", "/")}, {}, {"public"}, {});
  bool mismatch = false;
  const auto* post = by_method.by_listener[0]->match("example.test", "/admin", "POST", mismatch);
  REQUIRE(post);
  CHECK(post->route.name == "post-admin");
  CHECK(by_method.by_listener[0]->match("example.test", "/admin", "GET", mismatch) == nullptr);
  CHECK_FALSE(mismatch);

  const auto only = detail::build_listener_routers({bound("admin", "/admin", {"admin"})}, {}, {"public", "admin"}, {});
  CHECK(pick(*only.by_listener[0], "/admin") == "404");
  CHECK(pick(*only.by_listener[1], "/admin") == "admin");
}
