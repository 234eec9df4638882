// The two wire formats of a security event: ECS JSON (nested objects, pure ASCII) and CEF:0.
// Field names and the kind table are documented in docs/observability.md ("Security events").

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <optional>

#include <nlohmann/json.hpp>

#include "observe/event_format.hpp"

#ifndef GATEHOUSE_VERSION
#define GATEHOUSE_VERSION "0.1.0"
#endif

namespace gatehouse {
namespace detail {
namespace {

// One row per SecurityEventKind, in enum order. Categories and types are ECS allowed values.
constexpr std::array<SecurityEventTraits, kSecurityEventKindCount> kTraits{{
    {"authentication_failure", "Authentication failure", "event", "authentication", "start", 5},
    {"authorization_denied", "Authorization denied", "event", "web", "access,denied", 4},
    {"rate_limited", "Rate limited", "event", "network,web", "denied", 3},
    {"ip_filtered", "IP address filtered", "event", "network", "denied", 4},
    {"waf_match", "Threat-protection rule matched", "alert", "intrusion_detection,web", "denied", 7},
    {"ban", "Client banned", "alert", "intrusion_detection,network", "denied", 7},
    {"unban", "Client ban lifted", "event", "network", "allowed", 3},
    {"protocol_violation", "HTTP protocol violation", "event", "network,web", "protocol,denied", 5},
    {"tls_handshake_failure", "TLS handshake failure", "event", "network", "connection,protocol", 3},
    {"client_certificate_rejected", "Client certificate rejected", "event", "authentication,network", "start", 6},
    {"config_reload", "Configuration reload", "event", "configuration", "change", 3},
}};

// A comma-separated list as a JSON array.
nlohmann::ordered_json list(std::string_view csv) {
  auto a = nlohmann::ordered_json::array();
  while (!csv.empty()) {
    const auto comma = csv.find(',');
    a.push_back(std::string(csv.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    csv.remove_prefix(comma + 1);
  }
  return a;
}

// Cuts to at most `max` bytes without splitting a UTF-8 sequence.
void cut(std::string& s, std::size_t max) noexcept {
  if (s.size() <= max) return;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
}

std::string label_key(std::string_view key) {
  std::string k;
  for (char c : key) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    k += ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') ? c : '_';
  }
  if (k.empty()) k = "_";
  return k;
}

std::string ip_text(const asio::ip::address& a) { return a.to_string(); }

// CEF header fields: '\' and '|' escaped, no line breaks.
std::string cef_header(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '|') out += '\\';
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  }
  return out;
}

// CEF extension values: '\' and '=' escaped, CR and LF as \r and \n, other controls as spaces.
void cef_value(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '=': out += "\\="; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
    }
  }
}

}  // namespace

const SecurityEventTraits& traits(SecurityEventKind kind) noexcept {
  const auto i = static_cast<std::size_t>(kind);
  return kTraits[i < kTraits.size() ? i : static_cast<std::size_t>(SecurityEventKind::protocol_violation)];
}

int syslog_severity(const SecurityEvent& event) noexcept {
  return event.outcome == SecurityEventOutcome::failure || traits(event.kind).ecs_kind == "alert" ? 4 : 5;
}

void bound_event(SecurityEvent& e) noexcept {
  constexpr std::size_t kLong = 1024, kShort = 256, kLabels = 16, kKey = 64;
  cut(e.reason, kLong);
  cut(e.url_path, kLong);
  for (std::string* s : {&e.action, &e.route, &e.request_id, &e.trace_id, &e.http_method, &e.user_name, &e.rule_id,
                         &e.rule_name, &e.tls_client_subject})
    cut(*s, kShort);
  if (e.labels.size() > kLabels) e.labels.resize(kLabels);
  for (auto& f : e.labels) {
    cut(f.key, kKey);
    cut(f.value, kShort);
  }
}

std::string default_action(SecurityEventKind kind) {
  std::string a(traits(kind).name);
  std::replace(a.begin(), a.end(), '_', '-');
  return a;
}

std::string rfc3339_utc(std::chrono::system_clock::time_point t, int fraction_digits) {
  using namespace std::chrono;
  const auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
  auto secs = static_cast<std::time_t>(us / 1'000'000);
  long frac = static_cast<long>(us % 1'000'000);
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  if (fraction_digits == 3) {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, frac / 1000);
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  }
  return buf;
}

}  // namespace detail

std::string_view to_string(SecurityEventKind kind) noexcept { return detail::traits(kind).name; }

std::optional<SecurityEventKind> security_event_kind(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kSecurityEventKindCount; ++i)
    if (detail::kTraits[i].name == name) return static_cast<SecurityEventKind>(i);
  return std::nullopt;
}

std::string_view to_string(SecurityEventOutcome outcome) noexcept {
  switch (outcome) {
    case SecurityEventOutcome::success: return "success";
    case SecurityEventOutcome::failure: return "failure";
    case SecurityEventOutcome::unknown: break;
  }
  return "unknown";
}

std::string format_ecs(const SecurityEvent& e) {
  using json = nlohmann::ordered_json;
  const detail::SecurityEventTraits& t = detail::traits(e.kind);
  json j;
  j["@timestamp"] = detail::rfc3339_utc(e.time, 3);
  std::string message(t.title);
  if (!e.reason.empty()) message += ": " + e.reason;
  j["message"] = message;
  j["ecs"]["version"] = "8.11.0";
  json& ev = j["event"];
  ev["kind"] = std::string(t.ecs_kind);
  ev["category"] = detail::list(t.categories);
  ev["type"] = detail::list(t.types);
  ev["action"] = e.action.empty() ? detail::default_action(e.kind) : e.action;
  ev["outcome"] = std::string(to_string(e.outcome));
  if (!e.reason.empty()) ev["reason"] = e.reason;
  ev["severity"] = t.cef_severity;
  ev["dataset"] = "gatehouse.security";
  ev["module"] = "gatehouse";
  j["service"]["name"] = "gatehouse";
  if (e.peer) {
    j["source"]["ip"] = detail::ip_text(e.peer->address());
    j["source"]["port"] = e.peer->port();
  }
  if (e.client_ip) {
    j["client"]["ip"] = detail::ip_text(*e.client_ip);
    // ECS: when the source is a proxy, the address it forwarded for.
    if (e.peer && e.peer->address() != *e.client_ip) j["network"]["forwarded_ip"] = detail::ip_text(*e.client_ip);
  }
  if (!e.url_path.empty()) j["url"]["path"] = e.url_path;
  if (!e.http_method.empty()) j["http"]["request"]["method"] = e.http_method;
  if (!e.request_id.empty()) j["http"]["request"]["id"] = e.request_id;
  if (e.http_status != 0) j["http"]["response"]["status_code"] = e.http_status;
  if (!e.user_name.empty()) j["user"]["name"] = e.user_name;
  if (!e.rule_id.empty()) j["rule"]["id"] = e.rule_id;
  if (!e.rule_name.empty()) j["rule"]["name"] = e.rule_name;
  if (!e.trace_id.empty()) j["trace"]["id"] = e.trace_id;
  if (!e.tls_client_subject.empty()) j["tls"]["client"]["subject"] = e.tls_client_subject;
  if (!e.route.empty() || !e.labels.empty()) {
    json& labels = j["labels"];
    if (!e.route.empty()) labels["route"] = e.route;
    for (const auto& f : e.labels) labels[detail::label_key(f.key)] = f.value;
  }
  return j.dump(-1, ' ', true, json::error_handler_t::replace);
}

std::string format_cef(const SecurityEvent& e) {
  const detail::SecurityEventTraits& t = detail::traits(e.kind);
  std::string out = "CEF:0|gatehouse|gatehouse|" GATEHOUSE_VERSION "|";
  out += detail::cef_header(t.name);
  out += '|';
  out += detail::cef_header(t.title);
  out += '|';
  out += std::to_string(t.cef_severity);
  out += '|';
  bool first = true;
  auto add = [&](std::string_view key, std::string_view value) {
    if (!first) out += ' ';
    first = false;
    out += key;
    out += '=';
    detail::cef_value(out, value);
  };
  using namespace std::chrono;
  add("rt", std::to_string(duration_cast<milliseconds>(e.time.time_since_epoch()).count()));
  add("act", e.action.empty() ? detail::default_action(e.kind) : e.action);
  add("outcome", to_string(e.outcome));
  if (!e.reason.empty()) add("reason", e.reason);
  if (e.client_ip) {
    if (e.client_ip->is_v4()) {
      add("src", detail::ip_text(*e.client_ip));
    } else {
      add("c6a2", detail::ip_text(*e.client_ip));
      add("c6a2Label", "Source IPv6 Address");
    }
  }
  if (e.peer) {
    if (e.client_ip && e.peer->address() == *e.client_ip) {
      add("spt", std::to_string(e.peer->port()));
    } else {
      asio::ip::tcp::endpoint p = *e.peer;
      add("cs6", detail::ip_text(p.address()) + " " + std::to_string(p.port()));
      add("cs6Label", "peer");
    }
  }
  if (!e.http_method.empty()) add("requestMethod", e.http_method);
  if (!e.url_path.empty()) add("request", e.url_path);
  if (!e.user_name.empty()) add("suser", e.user_name);
  if (!e.request_id.empty()) add("externalId", e.request_id);
  if (e.http_status != 0) {
    add("cn1", std::to_string(e.http_status));
    add("cn1Label", "httpStatus");
  }
  if (!e.route.empty()) {
    add("cs1", e.route);
    add("cs1Label", "route");
  }
  if (!e.rule_id.empty()) {
    add("cs2", e.rule_id);
    add("cs2Label", "ruleId");
  }
  if (!e.rule_name.empty()) {
    add("cs3", e.rule_name);
    add("cs3Label", "ruleName");
  }
  if (!e.trace_id.empty()) {
    add("cs4", e.trace_id);
    add("cs4Label", "traceId");
  }
  if (!e.tls_client_subject.empty()) {
    add("flexString1", e.tls_client_subject);
    add("flexString1Label", "tlsClientSubject");
  }
  if (!e.labels.empty()) {
    std::string joined;
    for (const auto& f : e.labels) {
      if (!joined.empty()) joined += ';';
      joined += detail::label_key(f.key);
      joined += '=';
      joined += f.value;
    }
    add("cs5", joined);
    add("cs5Label", "labels");
  }
  return out;
}

std::string format_security_event(const SecurityEvent& event, SecurityEventFormat format) {
  return format == SecurityEventFormat::cef ? format_cef(event) : format_ecs(event);
}

}  // namespace gatehouse
