// The "trace_context" objects of the configuration file: top level and per listener.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "gatehouse/config.hpp"
#include "config_error.hpp"

using gatehouse::ConfigError;
using gatehouse::load_config;
using gatehouse::TraceContinue;
using nlohmann::json;

namespace {

using gatehouse::test::error_of;

json base() {
  return json::parse(R"({"listeners": [{"port": 8080}, {"port": 8081, "name": "internal"}],
                          "routes": [{"path": "/", "respond": {"status": 200}}]})");
}

}  // namespace

TEST_CASE("config trace_context: defaults, top level, and a listener's own overriding it") {
  const auto plain = load_config(base().dump());
  CHECK(plain.options.trace_context.enabled);
  CHECK(plain.options.trace_context.continue_from == TraceContinue::trusted);
  CHECK(plain.options.trace_context.sample_new);
  CHECK_FALSE(plain.listeners[0].trace_context);

  json doc = base();
  doc["trace_context"] = {{"continue_from", "never"}, {"sample_new", false}};
  doc["listeners"][1]["trace_context"] = {{"continue_from", "trusted"}, {"trusted_sources", {"10.0.0.0/8", "::1"}}};
  const auto c = load_config(doc.dump());
  CHECK(c.options.trace_context.continue_from == TraceContinue::never);
  CHECK_FALSE(c.options.trace_context.sample_new);
  CHECK_FALSE(c.listeners[0].trace_context);
  REQUIRE(c.listeners[1].trace_context);
  const auto& own = *c.listeners[1].trace_context;
  CHECK(own.continue_from == TraceContinue::trusted);
  CHECK(own.trusted_sources == std::vector<std::string>{"10.0.0.0/8", "::1"});
  CHECK_FALSE(own.sample_new);  // left out: the top level's
  CHECK(own.enabled);

  doc["listeners"][0]["trace_context"] = {{"enabled", false}};
  CHECK_FALSE(load_config(doc.dump()).listeners[0].trace_context->enabled);
  doc["trace_context"] = {{"continue_from", "all"}};
  CHECK(load_config(doc.dump()).options.trace_context.continue_from == TraceContinue::all);
}

TEST_CASE("config trace_context: errors at the offending key") {
  json doc = base();
  doc["trace_context"] = {{"continue_from", "sometimes"}};
  CHECK(error_of(doc).path() == "/trace_context/continue_from");
  doc["trace_context"] = {{"trusted_sources", {"10.0.0.0/33"}}};
  CHECK(error_of(doc).path() == "/trace_context/trusted_sources/0");
  doc["trace_context"] = {{"sampled", true}};
  const auto unknown = error_of(doc);
  CHECK(unknown.path() == "/trace_context/sampled");
  CHECK(std::string(unknown.what()).find("sample_new") != std::string::npos);
  doc = base();
  doc["listeners"][1]["trace_context"] = {{"enabled", "yes"}};
  CHECK(error_of(doc).path() == "/listeners/1/trace_context/enabled");
}
