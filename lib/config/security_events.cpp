// The top-level "security_events" section (docs/observability.md, "Security events"; loader.cpp
// has the conventions: strict keys, errors at the JSON pointer of the offending key).
//
//   security_events: {
//     format: "ecs" | "cef"                         default "ecs"
//     sinks: required, non-empty array of
//       {type: "file", path: file to append to}
//       {type: "stdout"}
//       {type: "syslog", transport: "udp" | "tcp" ("udp"), address: IP literal ("127.0.0.1"),
//        port: 1..65535 (514), facility: "authpriv" (any RFC 5424 name: kern .. local7),
//        app_name: 1..48 printable ASCII ("gatehouse"), hostname: "" (this machine's),
//        max_buffer_bytes: 1024..1073741824 (1048576), connect_timeout_ms: duration (1000)}
//     queue_size: 2..1048576                        default 8192
//     rate_limit_per_kind: {per_second: 0..1000000 (100; 0: no cap), burst: 1..1000000 (200)}
//     summary_interval_ms: duration                 default 10000
//   }

#include <algorithm>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "config/sections.hpp"
#include "gatehouse/security_events.hpp"

namespace gatehouse::detail {
namespace {

using nlohmann::json;
using namespace config_json;

std::shared_ptr<EventSink> file_sink(const Object& o) {
  const std::string& file = as_string(o.require("path"), o.at("path"));
  if (file.empty()) throw ConfigError(o.at("path"), "expected a file name");
  try {
    return std::make_shared<FileEventSink>(FileEventSinkOptions{.path = file});
  } catch (const std::exception& e) {
    throw ConfigError(o.at("path"), e.what());
  }
}

std::shared_ptr<EventSink> syslog_sink(const Object& o) {
  SyslogEventSinkOptions s;
  const std::string transport = o.string("transport", "udp");
  if (transport == "tcp") s.transport = SyslogTransport::tcp;
  else if (transport != "udp") throw ConfigError(o.at("transport"), "expected \"udp\" or \"tcp\", got " + quote(transport));
  s.address = o.string("address", s.address);
  if (!is_ipv4(s.address) && !is_ipv6(s.address))
    throw ConfigError(o.at("address"), "expected an IPv4 or IPv6 address, got " + quote(s.address));
  s.port = static_cast<std::uint16_t>(o.integer("port", 1, 65535, s.port));
  s.facility = o.string("facility", s.facility);
  if (syslog_facility(s.facility) < 0)
    throw ConfigError(o.at("facility"), "unknown syslog facility " + quote(s.facility) +
                                            " (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, "
                                            "ftp, ntp, audit, alert, clock, local0..local7)");
  s.app_name = o.string("app_name", s.app_name);
  const bool app_ok = !s.app_name.empty() && s.app_name.size() <= 48 &&
                      std::all_of(s.app_name.begin(), s.app_name.end(), [](char c) { return c > 32 && c < 127; });
  if (!app_ok) throw ConfigError(o.at("app_name"), "expected 1 to 48 printable ASCII characters without spaces");
  s.hostname = o.string("hostname", s.hostname);
  if (s.hostname.size() > 255 || !std::all_of(s.hostname.begin(), s.hostname.end(), [](char c) { return c > 32 && c < 127; }))
    throw ConfigError(o.at("hostname"), "expected at most 255 printable ASCII characters without spaces");
  s.max_buffer_bytes = static_cast<std::size_t>(
      o.integer("max_buffer_bytes", 1024, std::int64_t{1} << 30, static_cast<std::int64_t>(s.max_buffer_bytes)));
  s.connect_timeout = o.duration("connect_timeout_ms", s.connect_timeout);
  return std::make_shared<SyslogEventSink>(std::move(s));
}

std::shared_ptr<EventSink> sink(const json& j, const std::string& path) {
  const json& obj = as_object(j, path);
  const auto t = obj.find("type");
  if (t == obj.end()) throw ConfigError(child(path, "type"), "missing required key \"type\" (\"file\", \"stdout\" or \"syslog\")");
  const std::string& type = as_string(*t, child(path, "type"));
  if (type == "file") return file_sink(Object(j, path, {"type", "path"}));
  if (type == "stdout") {
    (void)Object(j, path, {"type"});
    return std::make_shared<StdoutEventSink>();
  }
  if (type == "syslog") {
    return syslog_sink(Object(j, path,
                              {"type", "transport", "address", "port", "facility", "app_name", "hostname",
                               "max_buffer_bytes", "connect_timeout_ms"}));
  }
  throw ConfigError(child(path, "type"), "unknown sink type " + quote(type) + " (\"file\", \"stdout\" or \"syslog\")" +
                                             did_you_mean(type, {"file", "stdout", "syslog"}));
}

}  // namespace

SecurityEventsOptions parse_security_events(const json& j, const std::string& path) {
  Object o(j, path, {"format", "sinks", "queue_size", "rate_limit_per_kind", "summary_interval_ms"});
  SecurityEventsOptions opts;
  const std::string format = o.string("format", "ecs");
  if (format == "cef") opts.format = SecurityEventFormat::cef;
  else if (format != "ecs") throw ConfigError(o.at("format"), "expected \"ecs\" or \"cef\", got " + quote(format));
  const std::string sp = o.at("sinks");
  const json& sinks = as_array(o.require("sinks"), sp);
  if (sinks.empty()) throw ConfigError(sp, "at least one sink is needed");
  std::size_t i = 0;
  for (const json& s : sinks) {
    opts.sinks.push_back(sink(s, child(sp, i)));
    ++i;
  }
  opts.queue_size =
      static_cast<std::size_t>(o.integer("queue_size", 2, 1024 * 1024, static_cast<std::int64_t>(opts.queue_size)));
  if (const json* r = o.find("rate_limit_per_kind")) {
    Object rl(*r, o.at("rate_limit_per_kind"), {"per_second", "burst"});
    opts.rate_limit_per_kind.per_second =
        static_cast<std::uint32_t>(rl.integer("per_second", 0, 1'000'000, opts.rate_limit_per_kind.per_second));
    opts.rate_limit_per_kind.burst =
        static_cast<std::uint32_t>(rl.integer("burst", 1, 1'000'000, opts.rate_limit_per_kind.burst));
  }
  opts.summary_interval = o.duration("summary_interval_ms", opts.summary_interval);
  return opts;
}

}  // namespace gatehouse::detail
