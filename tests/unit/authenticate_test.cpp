#include <doctest/doctest.h>

#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "gatehouse/auth/jwt_verifier.hpp"
#include "gatehouse/middleware/authenticate.hpp"
#include "gatehouse/testing.hpp"
#include "support/jwt_signer.hpp"

using namespace gatehouse;
using namespace gatehouse::auth;
namespace gt = gatehouse::testing;
using gatehouse::test::b64url;
using gatehouse::test::make_token;
using gatehouse::test::TestKey;
using nlohmann::json;

namespace {

constexpr std::int64_t kNow = 1'700'000'000;
const std::string kIssuer = "https://issuer.test";

// Keys that are never there: the verifier must go asynchronous and then cannot decide.
class MissingKeys final : public KeySource {
 public:
  std::shared_ptr<const JwkSet> current() const override { return nullptr; }
  asio::awaitable<std::shared_ptr<const JwkSet>> refresh_for_unknown_kid(std::string) const override {
    co_return nullptr;
  }
};

// Hides the synchronous path of another verifier, to exercise Flow::later.
class AsyncOnly final : public TokenVerifier {
 public:
  explicit AsyncOnly(std::shared_ptr<const TokenVerifier> inner) : inner_(std::move(inner)) {}
  asio::awaitable<VerifyResult> verify(std::string_view token) const override { return inner_->verify(token); }

 private:
  std::shared_ptr<const TokenVerifier> inner_;
};

struct Logged {
  std::string error;  ///< the error's message
  std::string detail;
  std::string request_id;
};

// Collects what Authenticate logs about refused credentials.
class FailureLog final : public Logger {
 public:
  explicit FailureLog(std::vector<Logged>* out) : out_(out) {}
  void log(LogLevel, std::string_view, std::span<const LogField> fields) override {
    Logged l;
    for (const LogField& f : fields) {
      if (f.key == "error") l.error = f.value;
      if (f.key == "detail") l.detail = f.value;
      if (f.key == "request_id") l.request_id = f.value;
    }
    out_->push_back(std::move(l));
  }

 private:
  std::vector<Logged>* out_;
};

struct Fixture {
  gt::FakeClock clock{gt::FakeClock::time_point{std::chrono::seconds{kNow}}};
  TestKey rsa = TestKey::generate("RS256");
  std::shared_ptr<const JwtVerifier> verifier = make_verifier(kIssuer, StaticKeySource::from_jwks(rsa.jwks("k1").dump()));
  std::vector<Logged> logged;

  std::shared_ptr<const JwtVerifier> make_verifier(const std::string& issuer, std::shared_ptr<const KeySource> keys) {
    JwtVerifierOptions o;
    o.algorithms = {"RS256"};
    o.issuers = {{issuer, std::move(keys)}};
    o.audiences = {"api"};
    o.clock = &clock;
    return std::make_shared<const JwtVerifier>(std::move(o));
  }
  AuthenticateOptions options() {
    AuthenticateOptions o;
    o.verifiers = {verifier};
    o.realm = "api";
    o.identity.claims = {{"tenant", "x-auth-tenant"}, {"roles", "x-auth-roles"}, {"level", "x-auth-level"}};
    o.logger = std::make_shared<FailureLog>(&logged);
    return o;
  }
  static json payload() {
    return {{"iss", kIssuer}, {"aud", "api"}, {"sub", "alice"}, {"exp", kNow + 600},
            {"iat", kNow},    {"scope", "orders:read orders:write"}, {"tenant", "acme"},
            {"roles", {"admin", "ops"}}, {"level", 3}};
  }
  std::string token(const json& p = payload()) const {
    return make_token(rsa, {{"alg", "RS256"}, {"kid", "k1"}, {"typ", "JWT"}}, p);
  }
};

std::string bearer(const std::string& token) { return "Bearer " + token; }

}  // namespace

TEST_CASE_FIXTURE(Fixture, "a valid token passes with Claims stored and identity headers set") {
  Authenticate mw(options());
  const std::string t = token();
  auto ex = gt::exchange("GET", "/orders", {{"authorization", bearer(t)}});
  Flow f = mw.on_request(ex);
  REQUIRE(f.is_next());
  const Claims* claims = ex.find<Claims>();
  REQUIRE(claims);
  CHECK(claims->subject() == "alice");
  const Headers& h = ex.request().headers();
  CHECK(h.get("x-auth-subject") == "alice");
  CHECK(h.get("x-auth-scopes") == "orders:read orders:write");
  CHECK(h.get("x-auth-tenant") == "acme");
  CHECK(h.get("x-auth-roles") == "admin ops");
  CHECK(h.get("x-auth-level") == "3");
  CHECK(h.get("authorization") == bearer(t));  // forward_token defaults to true
  CHECK(ex.find<AuthFailure>() == nullptr);
  CHECK(logged.empty());
}

TEST_CASE_FIXTURE(Fixture, "identity headers sent by the client are removed whatever their case") {
  Authenticate mw(options());
  SUBCASE("with a valid token the gateway's values replace them") {
    json p = payload();
    p.erase("tenant");
    auto ex = gt::exchange("GET", "/", {{"X-AUTH-SUBJECT", "mallory"}, {"x-Auth-Scopes", "admin"},
                                        {"X-Auth-Tenant", "evil"}, {"authorization", bearer(token(p))}});
    REQUIRE(mw.on_request(ex).is_next());
    const Headers& h = ex.request().headers();
    CHECK(h.count("x-auth-subject") == 1);
    CHECK(h.get("x-auth-subject") == "alice");
    CHECK(h.get("x-auth-scopes") == "orders:read orders:write");
    CHECK_FALSE(h.contains("x-auth-tenant"));  // the token has no tenant: no header at all
  }
  SUBCASE("a refused request is stripped too") {
    auto ex = gt::exchange("GET", "/", {{"X-AUTH-SUBJECT", "mallory"}});
    CHECK(mw.on_request(ex).is_response());
    CHECK_FALSE(ex.request().headers().contains("x-auth-subject"));
  }
  SUBCASE("an optional route passes anonymous requests without them") {
    auto o = options();
    o.optional = true;
    Authenticate anon(std::move(o));
    auto ex = gt::exchange("GET", "/", {{"X-Auth-Subject", "mallory"}, {"x-auth-roles", "admin"}});
    CHECK(anon.on_request(ex).is_next());
    CHECK(ex.request().headers().empty());
    CHECK(ex.find<Claims>() == nullptr);
  }
}

TEST_CASE_FIXTURE(Fixture, "no credential answers 401 with a challenge that has no error code") {
  Authenticate mw(options());
  for (auto header : {std::pair<std::string_view, std::string_view>{"x-other", "1"},
                      {"authorization", "Basic YWxpY2U6c2VjcmV0"}}) {
    auto ex = gt::exchange("GET", "/", {header});
    Flow f = mw.on_request(ex);
    REQUIRE(f.is_response());
    CHECK(f.response().status() == 401);
    CHECK(f.response().headers().get("www-authenticate") == "Bearer realm=\"api\"");
  }
  CHECK(logged.empty());  // a missing credential is not an attack worth a log line
}

TEST_CASE_FIXTURE(Fixture, "bad tokens get the same 401 invalid_token; the reason goes to the log only") {
  auto chain = std::vector<std::shared_ptr<const Middleware>>{std::make_shared<Authenticate>(options())};
  json expired = payload();
  expired["exp"] = kNow - 3600;
  std::string bad_sig = token();
  bad_sig[bad_sig.size() - 10] = bad_sig[bad_sig.size() - 10] == 'A' ? 'B' : 'A';
  const std::string alg_none = b64url(R"({"alg":"none","typ":"JWT"})") + "." + b64url(payload().dump()) + ".";

  std::vector<std::string> bodies;
  const std::vector<std::pair<std::string, TokenError>> cases = {
      {token(expired), TokenError::expired},
      {bad_sig, TokenError::bad_signature},
      {alg_none, TokenError::unsupported_algorithm},
      {"not-a-jwt", TokenError::malformed}};
  for (const auto& [t, error] : cases) {
    CAPTURE(t);
    auto ex = gt::exchange("GET", "/", {{"authorization", bearer(t)}});
    gt::FakeUpstream up;
    auto r = gt::run_chain(chain, ex, &up);
    CHECK(r.status == 401);
    CHECK_FALSE(r.reached_upstream);
    CHECK(r.headers.get("www-authenticate") == "Bearer realm=\"api\", error=\"invalid_token\"");
    bodies.push_back(r.body);
    const AuthFailure* failure = ex.find<AuthFailure>();
    REQUIRE(failure);
    CHECK(failure->error == make_error_code(error));
    CHECK(failure->reason.find(make_error_code(error).message()) == 0);
    REQUIRE_FALSE(logged.empty());
    CHECK(logged.back().error == make_error_code(error).message());
    CHECK(logged.back().request_id == "test-id");
  }
  for (const auto& b : bodies) CHECK(b == bodies.front());
  CHECK(bodies.front().find("expired") == std::string::npos);
  CHECK(logged.size() == cases.size());
}

TEST_CASE_FIXTURE(Fixture, "a bad token on an optional route is still refused") {
  auto o = options();
  o.optional = true;
  Authenticate mw(std::move(o));
  auto ex = gt::exchange("GET", "/", {{"authorization", "Bearer garbage"}});
  Flow f = mw.on_request(ex);
  REQUIRE(f.is_response());
  CHECK(f.response().status() == 401);
}

TEST_CASE_FIXTURE(Fixture, "two credentials are refused with 400 invalid_request") {
  Authenticate mw(options());
  auto ex = gt::exchange("GET", "/", {{"authorization", bearer(token())}, {"Authorization", "Bearer other"}});
  Flow f = mw.on_request(ex);
  REQUIRE(f.is_response());
  CHECK(f.response().status() == 400);
  CHECK(f.response().headers().get("www-authenticate") == "Bearer realm=\"api\", error=\"invalid_request\"");
}

TEST_CASE_FIXTURE(Fixture, "cookie and query parameter sources, and forward_token = false") {
  const std::string t = token();
  SUBCASE("cookie") {
    auto o = options();
    o.source = CredentialSource::cookie("session");
    SUBCASE("forwarded") {
      Authenticate mw(std::move(o));
      auto ex = gt::exchange("GET", "/", {{"cookie", "theme=dark; session=" + t}});
      CHECK(mw.on_request(ex).is_next());
      CHECK(ex.request().headers().get("cookie") == "theme=dark; session=" + t);
    }
    SUBCASE("removed, other cookies kept") {
      o.forward_token = false;
      Authenticate mw(std::move(o));
      auto ex = gt::exchange("GET", "/", {{"cookie", "theme=dark; session=" + t + "; lang=en"}, {"Cookie", "session=" + t}});
      // Two cookies of that name: refused, never guessed.
      CHECK(mw.on_request(ex).response().status() == 400);
      auto ex2 = gt::exchange("GET", "/", {{"cookie", "theme=dark; session=" + t + "; lang=en"}, {"Cookie", "session2=x"}});
      CHECK(mw.on_request(ex2).is_next());
      std::vector<std::string_view> cookies;
      for (auto f : ex2.request().headers()) {
        if (iequals(f.name, "cookie")) cookies.push_back(f.value);
      }
      CHECK(cookies == std::vector<std::string_view>{"theme=dark; lang=en", "session2=x"});
      auto ex3 = gt::exchange("GET", "/", {{"cookie", "session=" + t}});
      CHECK(mw.on_request(ex3).is_next());
      CHECK_FALSE(ex3.request().headers().contains("cookie"));
    }
  }
  SUBCASE("query") {
    auto o = options();
    o.source = CredentialSource::query("access_token");
    SUBCASE("forwarded") {
      Authenticate mw(std::move(o));
      auto ex = gt::exchange("GET", "/a?x=1&access_token=" + t);
      CHECK(mw.on_request(ex).is_next());
      CHECK(ex.request().target() == "/a?x=1&access_token=" + t);
    }
    SUBCASE("removed") {
      o.forward_token = false;
      Authenticate mw(std::move(o));
      auto ex = gt::exchange("GET", "/a?x=1&access_token=" + t + "&y=2");
      CHECK(mw.on_request(ex).is_next());
      CHECK(ex.request().target() == "/a?x=1&y=2");
      auto ex2 = gt::exchange("GET", "/a?access_token=" + t);
      CHECK(mw.on_request(ex2).is_next());
      CHECK(ex2.request().target() == "/a");
      auto ex3 = gt::exchange("GET", "/a?access_token=nope");
      CHECK(mw.on_request(ex3).response().status() == 401);
    }
  }
  SUBCASE("authorization header removed") {
    auto o = options();
    o.forward_token = false;
    Authenticate mw(std::move(o));
    auto ex = gt::exchange("GET", "/", {{"authorization", bearer(t)}, {"accept", "*/*"}});
    CHECK(mw.on_request(ex).is_next());
    CHECK_FALSE(ex.request().headers().contains("authorization"));
    CHECK(ex.request().headers().get("accept") == "*/*");
  }
  SUBCASE("another header holds the bare token") {
    auto o = options();
    o.source = CredentialSource::header("x-api-token");
    Authenticate mw(std::move(o));
    auto ex = gt::exchange("GET", "/", {{"x-api-token", t}});
    CHECK(mw.on_request(ex).is_next());
    auto ex2 = gt::exchange("GET", "/", {{"authorization", bearer(t)}});
    CHECK(mw.on_request(ex2).response().status() == 401);
  }
}

TEST_CASE_FIXTURE(Fixture, "keys unavailable: 503 (fail closed) unless configured to fail open") {
  auto o = options();
  o.verifiers = {make_verifier(kIssuer, std::make_shared<MissingKeys>())};
  const std::string t = token();
  SUBCASE("fail closed") {
    Authenticate mw(std::move(o));
    auto ex = gt::exchange("GET", "/", {{"authorization", bearer(t)}});
    Flow f = mw.on_request(ex);
    REQUIRE(f.is_later());  // the key source may still deliver: only the coroutine can tell
    Flow done = gt::run(std::move(f));
    REQUIRE(done.is_response());
    CHECK(done.response().status() == 503);
    REQUIRE(ex.find<AuthFailure>());
    CHECK(ex.find<AuthFailure>()->error == make_error_code(TokenError::key_source_unavailable));
    CHECK(logged.size() == 1);
  }
  SUBCASE("fail open: through, unauthenticated, identity still stripped") {
    o.fail_open_when_unavailable = true;
    Authenticate mw(std::move(o));
    auto ex = gt::exchange("GET", "/", {{"authorization", bearer(t)}, {"x-auth-subject", "mallory"}});
    Flow done = gt::run(mw.on_request(ex));
    CHECK(done.is_next());
    CHECK(ex.find<Claims>() == nullptr);
    CHECK_FALSE(ex.request().headers().contains("x-auth-subject"));
    CHECK(logged.size() == 1);
  }
}

TEST_CASE_FIXTURE(Fixture, "the asynchronous path gives the same decisions") {
  auto o = options();
  o.verifiers = {std::make_shared<AsyncOnly>(verifier)};
  Authenticate mw(std::move(o));
  auto ex = gt::exchange("GET", "/", {{"authorization", bearer(token())}});
  Flow f = mw.on_request(ex);
  REQUIRE(f.is_later());
  CHECK(gt::run(std::move(f)).is_next());
  REQUIRE(ex.find<Claims>());
  CHECK(ex.request().headers().get("x-auth-subject") == "alice");

  auto bad = gt::exchange("GET", "/", {{"authorization", "Bearer a.b.c"}});
  Flow refused = gt::run(mw.on_request(bad));
  REQUIRE(refused.is_response());
  CHECK(refused.response().status() == 401);
}

TEST_CASE_FIXTURE(Fixture, "several verifiers: the first that accepts wins, else the most specific error") {
  TestKey other = TestKey::generate("ES256");
  auto o = options();
  JwtVerifierOptions vo;
  vo.algorithms = {"ES256"};
  vo.issuers = {{"https://other.test", StaticKeySource::from_jwks(other.jwks("e1").dump())}};
  vo.clock = &clock;
  o.verifiers = {std::make_shared<const JwtVerifier>(std::move(vo)), verifier};
  Authenticate mw(std::move(o));

  auto ex = gt::exchange("GET", "/", {{"authorization", bearer(token())}});
  CHECK(mw.on_request(ex).is_next());

  json expired = payload();
  expired["exp"] = kNow - 3600;
  auto ex2 = gt::exchange("GET", "/", {{"authorization", bearer(token(expired))}});
  CHECK(mw.on_request(ex2).response().status() == 401);
  REQUIRE(ex2.find<AuthFailure>());
  // The first verifier only knows it is not its issuer; the second knows it expired.
  CHECK(ex2.find<AuthFailure>()->error == make_error_code(TokenError::expired));
}

TEST_CASE_FIXTURE(Fixture, "identity values cannot split a header line") {
  json p = payload();
  p["sub"] = "alice\r\nx-admin: yes";
  p["tenant"] = json{{"id", 7}};
  Authenticate mw(options());
  auto ex = gt::exchange("GET", "/", {{"authorization", bearer(token(p))}});
  REQUIRE(mw.on_request(ex).is_next());
  CHECK(ex.request().headers().get("x-auth-subject") == "alicex-admin: yes");
  CHECK(ex.request().headers().get("x-auth-tenant") == R"({"id":7})");
}

TEST_CASE_FIXTURE(Fixture, "invalid options are refused up front") {
  const AuthenticateOptions empty;  // a named object: g++ 12 -O3 misreports a temporary as uninitialized
  CHECK_THROWS_AS(Authenticate{empty}, std::invalid_argument);
  auto o = options();
  o.realm = "a\"b";
  CHECK_THROWS_AS(Authenticate{o}, std::invalid_argument);
  o = options();
  o.identity.subject = "bad name";
  CHECK_THROWS_AS(Authenticate{o}, std::invalid_argument);
  o = options();
  o.verifiers.push_back(nullptr);
  CHECK_THROWS_AS(Authenticate{o}, std::invalid_argument);
}
