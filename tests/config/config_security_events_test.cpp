// The "security_events" section: what it builds, and a precise error for each mistake.
#include <doctest/doctest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "gatehouse/config.hpp"
#include "gatehouse/security_events.hpp"
#include "support/temp_dir.hpp"
#include "config_error.hpp"

using gatehouse::ConfigError;
using gatehouse::load_config;
using nlohmann::json;

namespace {

using gatehouse::test::error_of;

json with_events(json events) {
  json j = json::parse(R"({
    "listeners": [ { "port": 8080 } ],
    "upstreams": { "users": { "endpoints": ["127.0.0.1:9001"] } },
    "routes": [ { "path": "/users", "upstream": "users" } ]
  })");
  j["security_events"] = std::move(events);
  return j;
}

}  // namespace

TEST_CASE("security_events: absent means no reporter") {
  json j = with_events(nullptr);
  j.erase("security_events");
  CHECK_FALSE(load_config(j.dump()).options.security_events);
}

TEST_CASE("security_events: every key maps onto SecurityEventsOptions") {
  gatehouse::test::TempDir tmp;
  const std::string file = (tmp.dir / "events.log").string();
  const auto config = load_config(with_events({
      {"format", "cef"},
      {"sinks",
       {{{"type", "file"}, {"path", file}},
        {{"type", "stdout"}},
        {{"type", "syslog"}, {"transport", "tcp"}, {"address", "::1"}, {"port", 6514}, {"facility", "local3"},
         {"app_name", "gw"}, {"hostname", "edge-1"}, {"max_buffer_bytes", 4096}, {"connect_timeout_ms", 250}}}},
      {"queue_size", 64},
      {"rate_limit_per_kind", {{"per_second", 0}, {"burst", 1}}},
      {"summary_interval_ms", 2000},
  }).dump());
  REQUIRE(config.options.security_events);
  const auto& o = config.options.security_events->options();
  CHECK(o.format == gatehouse::SecurityEventFormat::cef);
  REQUIRE(o.sinks.size() == 3);
  CHECK(dynamic_cast<gatehouse::FileEventSink*>(o.sinks[0].get()));
  CHECK(dynamic_cast<gatehouse::StdoutEventSink*>(o.sinks[1].get()));
  const auto* syslog = dynamic_cast<gatehouse::SyslogEventSink*>(o.sinks[2].get());
  REQUIRE(syslog);
  CHECK(syslog->options().transport == gatehouse::SyslogTransport::tcp);
  CHECK(syslog->options().address == "::1");
  CHECK(syslog->options().port == 6514);
  CHECK(syslog->options().facility == "local3");
  CHECK(syslog->options().app_name == "gw");
  CHECK(syslog->options().hostname == "edge-1");
  CHECK(syslog->options().max_buffer_bytes == 4096);
  CHECK(syslog->options().connect_timeout == std::chrono::milliseconds(250));
  CHECK(o.queue_size == 64);
  CHECK(o.rate_limit_per_kind.per_second == 0);
  CHECK(o.summary_interval == std::chrono::milliseconds(2000));
  CHECK(std::filesystem::exists(file));
}

TEST_CASE("security_events: defaults") {
  const auto config = load_config(with_events({{"sinks", {{{"type", "syslog"}}}}}).dump());
  REQUIRE(config.options.security_events);
  const auto& o = config.options.security_events->options();
  CHECK(o.format == gatehouse::SecurityEventFormat::ecs);
  CHECK(o.queue_size == 8192);
  CHECK(o.rate_limit_per_kind.per_second == 100);
  CHECK(o.rate_limit_per_kind.burst == 200);
  const auto* syslog = dynamic_cast<gatehouse::SyslogEventSink*>(o.sinks.at(0).get());
  REQUIRE(syslog);
  CHECK(syslog->options().transport == gatehouse::SyslogTransport::udp);
  CHECK(syslog->options().address == "127.0.0.1");
  CHECK(syslog->options().port == 514);
  CHECK(syslog->options().facility == "authpriv");
}

TEST_CASE("security_events: mistakes are reported at their key") {
  struct Case {
    json events;
    std::string path, says;
  };
  const Case cases[] = {
      {{{"sinks", {{{"type", "stdout"}}}}, {"colour", "red"}}, "/security_events/colour", "unknown key"},
      {{{"sinks", json::array()}}, "/security_events/sinks", "at least one sink"},
      {json::object(), "/security_events/sinks", "missing required key"},
      {{{"format", "leef"}, {"sinks", {{{"type", "stdout"}}}}}, "/security_events/format", "\"ecs\" or \"cef\""},
      {{{"sinks", {{{"type", "kafka"}}}}}, "/security_events/sinks/0/type", "unknown sink type"},
      {{{"sinks", {json::object()}}}, "/security_events/sinks/0/type", "missing required key"},
      {{{"sinks", {{{"type", "stdout"}, {"path", "x"}}}}}, "/security_events/sinks/0/path", "unknown key"},
      {{{"sinks", {{{"type", "file"}}}}}, "/security_events/sinks/0/path", "missing required key"},
      {{{"sinks", {{{"type", "file"}, {"path", "/nonexistent-dir/x/events.log"}}}}},
       "/security_events/sinks/0/path", "cannot open"},
      {{{"sinks", {{{"type", "syslog"}, {"transport", "tls"}}}}}, "/security_events/sinks/0/transport", "\"udp\" or \"tcp\""},
      {{{"sinks", {{{"type", "syslog"}, {"address", "collector.example"}}}}}, "/security_events/sinks/0/address",
       "IPv4 or IPv6"},
      {{{"sinks", {{{"type", "syslog"}, {"port", 0}}}}}, "/security_events/sinks/0/port", ""},
      {{{"sinks", {{{"type", "syslog"}, {"facility", "security"}}}}}, "/security_events/sinks/0/facility",
       "unknown syslog facility"},
      {{{"sinks", {{{"type", "syslog"}, {"app_name", "my app"}}}}}, "/security_events/sinks/0/app_name", "printable"},
      {{{"sinks", {{{"type", "syslog"}, {"prot", 1}}}}}, "/security_events/sinks/0/prot", "did you mean \"port\""},
      {{{"sinks", {{{"type", "stdout"}}}}, {"queue_size", 1}}, "/security_events/queue_size", ""},
      {{{"sinks", {{{"type", "stdout"}}}}, {"rate_limit_per_kind", {{"burst", 0}}}},
       "/security_events/rate_limit_per_kind/burst", ""},
      {{{"sinks", {{{"type", "stdout"}}}}, {"rate_limit_per_kind", {{"per_minute", 5}}}},
       "/security_events/rate_limit_per_kind/per_minute", "unknown key"},
      {{{"sinks", {{{"type", "stdout"}}}}, {"summary_interval_ms", 0}}, "/security_events/summary_interval_ms", ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.events.dump());
    const ConfigError e = error_of(with_events(c.events));
    CHECK(e.path() == c.path);
    CHECK(e.reason().find(c.says) != std::string::npos);
  }
}
