// VerifierRegistry: an application-defined verifier type named in the top-level "verifiers" section
// and used by an "authenticate" entry, next to the built-in types.
#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/token_verifier.hpp"
#include "gatehouse/config.hpp"
#include "gatehouse/logger.hpp"
#include "gatehouse/middleware/authenticate.hpp"
#include "gatehouse/testing.hpp"

using gatehouse::ConfigError;
using gatehouse::load_config;
using gatehouse::MiddlewareRegistry;
using gatehouse::VerifierRegistry;
using nlohmann::json;
namespace auth = gatehouse::auth;
namespace gt = gatehouse::testing;

namespace {

// Accepts one fixed token: the smallest verifier an application might plug in.
class SharedSecretVerifier final : public auth::TokenVerifier {
 public:
  SharedSecretVerifier(std::string secret, std::string subject)
      : secret_(std::move(secret)), claims_(json{{"sub", std::move(subject)}}) {}
  asio::awaitable<auth::VerifyResult> verify(std::string_view token) const override { co_return check(token); }
  std::optional<auth::VerifyResult> try_verify_now(std::string_view token) const override { return check(token); }

 private:
  auth::VerifyResult check(std::string_view token) const {
    if (token == secret_) return claims_;
    return auth::VerifyResult(auth::TokenError::unknown_key, "not the shared secret");
  }
  std::string secret_;
  auth::Claims claims_;
};

VerifierRegistry with_shared_secret() {
  VerifierRegistry r = VerifierRegistry::with_builtins();
  r.add("shared_secret", [](const json& options,
                            const std::string& path) -> std::shared_ptr<const auth::TokenVerifier> {
    // A factory validates its own keys and reports at their JSON pointer, like the built-ins.
    if (!options.contains("secret") || !options["secret"].is_string()) {
      throw ConfigError(path + "/secret", "expected a string");
    }
    if (options.value("subject", "") == "explode") throw std::runtime_error("no entropy");
    return std::make_shared<SharedSecretVerifier>(options["secret"].get<std::string>(),
                                                  options.value("subject", "app"));
  });
  return r;
}

json document(const json& verifier) {
  return {{"listeners", {{{"port", 8080}}}},
          {"upstreams", {{"svc", {{"endpoints", {"127.0.0.1:9001"}}}}}},
          {"verifiers", {{"mine", verifier}}},
          {"routes",
           {{{"path", "/"},
             {"upstream", "svc"},
             {"middleware", {{{"name", "authenticate"}, {"options", {{"verifiers", {"mine"}}}}}}}}}}};
}

std::pair<std::string, std::string> error_of(const json& verifier, const VerifierRegistry& verifiers) {
  try {
    load_config(document(verifier).dump(), MiddlewareRegistry::with_builtins(), verifiers);
  } catch (const ConfigError& e) {
    return {e.path(), e.reason()};
  }
  return {};
}

}  // namespace

TEST_CASE("verifier registry: an application type is built from the config and used by authenticate") {
  const json entry = {{"type", "shared_secret"}, {"secret", "s3cret"}, {"subject", "batch-job"}};
  const auto config = load_config(document(entry).dump(), MiddlewareRegistry::with_builtins(), with_shared_secret());
  REQUIRE(config.context.verifiers.count("mine") == 1);
  CHECK(dynamic_cast<const SharedSecretVerifier*>(config.context.verifiers.at("mine").get()) != nullptr);

  const auto& chain = config.routes.at(0).middleware;
  REQUIRE(chain.size() == 1);
  const auto* authenticate = dynamic_cast<const gatehouse::Authenticate*>(chain[0].get());
  REQUIRE(authenticate);

  // The refused guess below is logged: keep it out of the test output.
  struct Quiet {
    std::shared_ptr<gatehouse::Logger> previous = gatehouse::logger();
    Quiet() { gatehouse::set_logger(gatehouse::null_logger()); }
    ~Quiet() { gatehouse::set_logger(previous); }
  } quiet;
  gt::FakeUpstream up;
  auto ok = gt::exchange("GET", "/", {{"authorization", "Bearer s3cret"}});
  CHECK(gt::run_chain(chain, ok, &up).status == 200);
  REQUIRE(up.received().size() == 1);
  CHECK(up.received()[0].headers.get("x-auth-subject") == "batch-job");
  auto wrong = gt::exchange("GET", "/", {{"authorization", "Bearer guess"}});
  CHECK(gt::run_chain(chain, wrong, &up).status == 401);
  CHECK(up.received().size() == 1);
}

TEST_CASE("verifier registry: built-ins, names in order, unknown types and factory failures") {
  const VerifierRegistry builtins = VerifierRegistry::with_builtins();
  CHECK(builtins.names() == std::vector<std::string>{"jwt", "introspection", "api_keys"});
  CHECK(builtins.contains("jwt"));
  CHECK_FALSE(builtins.contains("shared_secret"));
  CHECK(with_shared_secret().names().back() == "shared_secret");

  // Without the registration (load_config's default registry) the type is unknown; the message
  // lists what is known.
  const json entry = {{"type", "shared_secret"}, {"secret", "s3cret"}};
  try {
    load_config(document(entry).dump());
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.path() == "/verifiers/mine/type");
    CHECK(e.reason() == "unknown verifier type \"shared_secret\"; known: jwt, introspection, api_keys");
  }
  CHECK(error_of({{"type", "shared_secrte"}, {"secret", "x"}}, with_shared_secret()) ==
        std::pair<std::string, std::string>{
            "/verifiers/mine/type",
            "unknown verifier type \"shared_secrte\" (did you mean \"shared_secret\"?); known: jwt, introspection, "
            "api_keys, shared_secret"});
  // The factory's own ConfigError passes through; anything else is reported at the entry.
  CHECK(error_of({{"type", "shared_secret"}}, with_shared_secret()) ==
        std::pair<std::string, std::string>{"/verifiers/mine/secret", "expected a string"});
  CHECK(error_of({{"type", "shared_secret"}, {"secret", "x"}, {"subject", "explode"}}, with_shared_secret()) ==
        std::pair<std::string, std::string>{"/verifiers/mine",
                                            "cannot create verifier \"mine\" of type \"shared_secret\": no entropy"});

  VerifierRegistry null_factory;
  null_factory.add("nothing",
                   [](const json&, const std::string&) { return std::shared_ptr<const auth::TokenVerifier>(); });
  CHECK(error_of({{"type", "nothing"}}, null_factory) ==
        std::pair<std::string, std::string>{"/verifiers/mine", "verifier factory for type \"nothing\" returned null"});
}
