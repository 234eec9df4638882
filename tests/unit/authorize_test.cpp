#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gatehouse/auth/claims.hpp"
#include "gatehouse/middleware/authorize.hpp"
#include "gatehouse/testing.hpp"

using namespace gatehouse;
namespace gt = gatehouse::testing;
using nlohmann::json;

namespace {

auth::Claims claims() {
  return auth::Claims(json{{"sub", "alice"},
                           {"scope", "orders:read profile"},
                           {"tenant", "acme"},
                           {"plan", "pro"},
                           {"roles", {"admin", "ops"}},
                           {"groups", "eng sre"},
                           {"level", 3},
                           {"realm_access", {{"roles", {"auditor"}}}}});
}

// The status on_request answers with (0 for next) and the WWW-Authenticate it sent.
std::pair<unsigned, std::string> decide(const Rule& rule, bool with_claims = true) {
  Authorize mw({.rule = rule, .realm = "api"});
  auto ex = gt::exchange("GET", "/");
  if (with_claims) ex.emplace<auth::Claims>(claims());
  Flow f = mw.on_request(ex);
  if (f.is_next()) return {0, ""};
  return {f.response().status(), std::string(f.response().headers().get("www-authenticate").value_or(""))};
}

}  // namespace

TEST_CASE("no Claims in the exchange: 401 with a plain challenge") {
  CHECK(decide(Rule::require_scopes({"orders:read"}), false) ==
        std::pair<unsigned, std::string>{401, "Bearer realm=\"api\""});
}

TEST_CASE("required scopes: all of them, and the missing ones are named") {
  CHECK(decide(Rule::require_scopes({"orders:read"})).first == 0);
  CHECK(decide(Rule::require_scopes({"orders:read", "profile"})).first == 0);
  CHECK(decide(Rule::require_scopes({"orders:read", "orders:write", "admin"})) ==
        std::pair<unsigned, std::string>{
            403, "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"orders:write admin\""});
}

TEST_CASE("claim rules: equals, contains and in") {
  CHECK(decide(Rule::claim_equals("tenant", "acme")).first == 0);
  CHECK(decide(Rule::claim_equals("tenant", "globex")).first == 403);
  CHECK(decide(Rule::claim_equals("level", "3")).first == 0);  // non-strings compare as JSON
  CHECK(decide(Rule::claim_equals("missing", "x")).first == 403);
  CHECK(decide(Rule::claim_contains("roles", "admin")).first == 0);
  CHECK(decide(Rule::claim_contains("roles", "adm")).first == 403);
  CHECK(decide(Rule::claim_contains("groups", "sre")).first == 0);  // space-separated string
  CHECK(decide(Rule::claim_contains("groups", "en")).first == 403);
  CHECK(decide(Rule::claim_contains("/realm_access/roles", "auditor")).first == 0);
  CHECK(decide(Rule::claim_in("plan", {"pro", "team"})).first == 0);
  CHECK(decide(Rule::claim_in("plan", {"free"})).first == 403);
  CHECK(decide(Rule::claim_in("roles", {"admin"})).first == 403);  // only string claims
  // A failed claim rule is not a scope problem: 403 without a challenge.
  CHECK(decide(Rule::claim_equals("tenant", "globex")).second.empty());
}

TEST_CASE("any_of and all_of combine rules, nested too") {
  const Rule admin_or_scope = Rule::any_of({Rule::claim_contains("roles", "root"), Rule::require_scopes({"orders:admin"})});
  CHECK(decide(admin_or_scope) == std::pair<unsigned, std::string>{
            403, "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"orders:admin\""});
  CHECK(decide(Rule::any_of({Rule::claim_contains("roles", "ops"), Rule::require_scopes({"orders:admin"})})).first == 0);
  CHECK(decide(Rule::all_of({Rule::claim_equals("tenant", "acme"), Rule::require_scopes({"orders:read"})})).first == 0);
  CHECK(decide(Rule::all_of({Rule::claim_equals("tenant", "acme"), Rule::require_scopes({"x"})})).second ==
        "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"x\"");
  CHECK(decide(Rule::all_of({Rule::require_scopes({"a"}), admin_or_scope})).second ==
        "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"a orders:admin\"");
  CHECK(decide(Rule::all_of({Rule::claim_in("plan", {"pro"}),
                             Rule::any_of({Rule::claim_equals("tenant", "x"), Rule::claim_equals("sub", "alice")})}))
            .first == 0);
}

TEST_CASE("rules that would let everyone in, or no one, are refused") {
  CHECK_THROWS_AS(Authorize({}), std::invalid_argument);  // empty all_of
  CHECK_THROWS_AS(Authorize({.rule = Rule::any_of({})}), std::invalid_argument);
  CHECK_THROWS_AS(Authorize({.rule = Rule::require_scopes({})}), std::invalid_argument);
  CHECK_THROWS_AS(Authorize({.rule = Rule::require_scopes({"two words"})}), std::invalid_argument);
  CHECK_THROWS_AS(Authorize({.rule = Rule::claim_equals("", "x")}), std::invalid_argument);
  CHECK_THROWS_AS(Authorize({.rule = Rule::claim_in("plan", {})}), std::invalid_argument);
  CHECK_THROWS_AS(Authorize({.rule = Rule::all_of({Rule::require_scopes({"a"})}), .realm = "\n"}), std::invalid_argument);
}

TEST_CASE("in a chain, after authentication stored the claims") {
  struct StoreClaims final : Middleware {
    Flow on_request(Exchange& ex) const override {
      ex.emplace<auth::Claims>(claims());
      return Flow::next();
    }
  };
  auto chain = std::vector<std::shared_ptr<const Middleware>>{
      std::make_shared<StoreClaims>(),
      std::make_shared<Authorize>(AuthorizeOptions{.rule = Rule::require_scopes({"orders:write"})})};
  gt::FakeUpstream up;
  auto ex = gt::exchange("GET", "/");
  auto r = gt::run_chain(chain, ex, &up);
  CHECK(r.status == 403);
  CHECK_FALSE(r.reached_upstream);
  CHECK(r.headers.get("www-authenticate") ==
        "Bearer realm=\"gatehouse\", error=\"insufficient_scope\", scope=\"orders:write\"");
}
