#include "admin/admin_endpoints.hpp"

#include <cctype>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "admin/redact.hpp"
#include "gatehouse/bans.hpp"
#include "config/json.hpp"
#include "gatehouse/config.hpp"

namespace gatehouse::detail {
namespace {

using nlohmann::json;

constexpr unsigned kAccepted = 202;
constexpr unsigned kUnprocessable = 422;

Flow json_answer(unsigned status, const json& body) {
  Response r;
  r.set_status(status);
  // Invalid UTF-8 in a configuration string is replaced rather than refused: the answer always goes out.
  r.set_body(body.dump(2, ' ', false, json::error_handler_t::replace) + "\n", "application/json");
  r.headers().set("cache-control", "no-store");
  return Flow::respond(std::move(r));
}

// {"error": message, "status": N, "request_id": ...}, as every error the gateway makes.
Flow error_answer(unsigned status, std::string_view message) {
  return Flow::respond(static_cast<Status>(status), message);
}

enum class Kind { read, action };

// Reads answer GET (and HEAD); actions answer POST only.
bool method_allowed(const Exchange& ex, Kind kind, Flow& refusal) {
  const std::string_view m = ex.request().method();
  if (kind == Kind::read ? (m == "GET" || m == "HEAD") : m == "POST") return true;
  refusal = error_answer(405, kind == Kind::read ? "use GET" : "use POST");
  refusal.response().headers().set("allow", kind == Kind::read ? "GET, HEAD" : "POST");
  return false;
}

std::string_view readiness_name(Readiness r) {
  switch (r) {
    case Readiness::starting: return "starting";
    case Readiness::ready: return "ready";
    case Readiness::draining: return "draining";
  }
  return "unknown";
}

Flow livez(const AdminState&, Exchange&) { return json_answer(200, {{"status", "alive"}}); }

Flow readyz(const AdminState& s, Exchange&) {
  const Readiness r = s.readiness.load(std::memory_order_acquire);
  if (r == Readiness::ready) return json_answer(200, {{"ready", true}, {"status", "ready"}});
  const char* reason = r == Readiness::starting ? "the gateway has not finished starting"
                                                : "the gateway is draining: it accepts no new connections";
  return json_answer(503, {{"ready", false}, {"status", std::string(readiness_name(r))}, {"reason", reason}});
}

Flow metrics(const AdminState& s, Exchange&) {
  if (!s.options.metrics) return error_answer(404, "metrics are not configured");
  Response r;
  try {
    r.set_body(s.options.metrics(), "text/plain; version=0.0.4; charset=utf-8");
  } catch (const std::exception& e) {
    return error_answer(500, std::string("metrics: ") + e.what());
  }
  r.headers().set("cache-control", "no-store");
  return Flow::respond(std::move(r));
}

Flow config(const AdminState& s, Exchange&) {
  if (!s.options.running_config) return error_answer(404, "the running configuration is not available");
  json parsed;
  try {
    // No parser detail in errors: it would quote the text, secrets included.
    parsed = config_json::parse_json(s.options.running_config(), false);
  } catch (const ConfigError& e) {
    return error_answer(500, "the running configuration does not parse: " + e.reason());
  } catch (const std::exception& e) {
    return error_answer(500, std::string("the running configuration is not available: ") + e.what());
  }
  return json_answer(200, redact_secrets(parsed));
}

const char* policy_note(const UpstreamOptions& o) {
  return o.health.active ? (o.health.active->kind == HealthCheckOptions::Kind::http ? "http" : "tcp") : "none";
}

// The upstreams in force, each resolved endpoint with its health, ejection and weight.
Flow upstreams(const AdminState& s, Exchange&) {
  json list = json::array();
  const auto in_force = s.upstreams.load();
  for (const auto& up : in_force ? *in_force : std::vector<std::shared_ptr<Upstream>>{}) {
    const UpstreamOptions& o = up->options();
    const std::vector<EndpointState> states = up->endpoint_states();
    std::size_t usable = 0;
    for (const auto& st : states) usable += st.usable() ? 1 : 0;
    json endpoints = json::array();
    for (const std::string& configured : o.endpoints) {
      json addresses = json::array();
      for (const auto& st : states) {
        if (st.endpoint != configured) continue;
        json a{{"address", st.address},
               {"health", st.health == EndpointState::Health::healthy ? "healthy" : "unhealthy"},
               {"ejected", st.ejected},
               {"weight", st.weight},
               {"weight_in_force", st.weight_factor * st.weight},
               {"ejections", st.ejections},
               {"checks_passed", st.checks_passed},
               {"checks_failed", st.checks_failed}};
        if (st.ejected) a["ejected_for_ms"] = st.ejected_for.count();
        addresses.push_back(std::move(a));
      }
      const auto w = o.weights.find(configured);
      endpoints.push_back({{"endpoint", configured},
                           {"weight", w == o.weights.end() ? 1u : w->second},
                           {"addresses", std::move(addresses)}});
    }
    const unsigned threshold = o.health.panic_threshold_percent;
    const bool panic = !states.empty() && threshold != 0 && usable * 100 < std::size_t{threshold} * states.size();
    list.push_back({{"name", up->name()},
                    {"tls", o.tls.has_value()},
                    {"health_check", policy_note(o)},
                    {"outlier_detection", o.health.outlier_detection.has_value()},
                    {"usable", usable},
                    {"panic", panic},
                    {"endpoints", std::move(endpoints)}});
  }
  return json_answer(200, {{"upstreams", std::move(list)}});
}

Flow drain(AdminState& s, Exchange&) {
  const bool already = s.readiness.exchange(Readiness::draining, std::memory_order_acq_rel) == Readiness::draining;
  if (!already) {
    try {
      if (s.options.drain) s.options.drain();
      else if (s.stop_gateway) s.stop_gateway();
    } catch (const std::exception& e) {
      return error_answer(500, std::string("drain: ") + e.what());
    }
  }
  return json_answer(kAccepted, {{"draining", true}});
}

Flow reload(const AdminState& s, Exchange&) {
  if (!s.options.reload) return error_answer(501, "reload is not configured");
  if (s.readiness.load(std::memory_order_acquire) == Readiness::draining)
    return error_answer(503, "the gateway is draining");
  ReloadResult report;
  try {
    report = s.options.reload();
  } catch (const ConfigError& e) {
    report = ReloadResult{.ok = false, .error = e.reason(), .error_path = e.path()};
  } catch (const std::exception& e) {
    return error_answer(500, std::string("reload failed: ") + e.what());
  }
  if (!report.ok) {
    json body{{"applied", false}, {"error", report.error}};
    if (!report.error_path.empty()) body["path"] = report.error_path;
    return json_answer(kUnprocessable, body);
  }
  return json_answer(200, {{"applied", true}, {"changes", report.changes}});
}

Flow endpoint_list(const AdminState&, Exchange&) {
  return json_answer(200, {{"endpoints",
                            {"GET /livez", "GET /readyz", "GET /metrics", "GET /config", "GET /upstreams",
                             "POST /drain", "POST /reload", "GET /bans", "POST /bans", "DELETE /bans/<ip>"}}});
}

// "%3A" -> ':'; '+' -> ' '. Invalid escapes stay as they are.
std::string url_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) && hex(s[i + 2])) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) return url_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

json ban_json(const Ban& b) {
  return {{"ip", b.client.to_string()},     {"since", unix_seconds(b.since)}, {"until", unix_seconds(b.until)},
          {"reason", b.reason},             {"source", b.source},            {"offence", b.offence}};
}

// GET /bans: the list. POST /bans?ip=A&duration_s=N&reason=R: ban. DELETE /bans/<ip>: lift.
Flow bans(AdminState& s, Exchange& ex) {
  const std::shared_ptr<BanList> list = s.bans.load();
  if (!list) return error_answer(404, "automatic bans are not configured");
  const std::string_view method = ex.request().method();
  const std::string_view path = ex.request().path();
  const bool one = path.size() > 6;  // "/bans/<ip>"
  if (!one && (method == "GET" || method == "HEAD")) {
    json items = json::array();
    for (const Ban& b : list->list()) items.push_back(ban_json(b));
    return json_answer(200, {{"bans", std::move(items)}});
  }
  if (!one && method == "POST") {
    const auto ip_text = query_param(ex.request().query(), "ip");
    if (!ip_text) return error_answer(400, "POST /bans needs ?ip=ADDRESS (and optionally duration_s, reason)");
    asio::error_code ec;
    const auto ip = asio::ip::make_address(*ip_text, ec);
    if (ec) return error_answer(400, "invalid ip address");
    std::int64_t seconds = std::chrono::duration_cast<std::chrono::seconds>(list->options().ban_time).count();
    if (const auto d = query_param(ex.request().query(), "duration_s")) {
      try {
        std::size_t used = 0;
        seconds = std::stoll(*d, &used);
        if (used != d->size() || seconds <= 0 || seconds > 366LL * 86400) throw std::out_of_range("duration");
      } catch (const std::exception&) {
        return error_answer(400, "duration_s must be an integer of seconds in 1..31622400");
      }
    }
    std::string reason = query_param(ex.request().query(), "reason").value_or("banned through the admin API");
    if (reason.size() > 256) reason.resize(256);
    if (list->allowed(ip)) return error_answer(409, "the address is in the allow list");
    if (!list->ban(ip, std::chrono::seconds(seconds), std::move(reason)))
      return error_answer(503, "the ban list is full");
    return json_answer(201, {{"banned", ip.to_string()}, {"duration_s", seconds}});
  }
  if (one && method == "DELETE") {
    asio::error_code ec;
    const auto ip = asio::ip::make_address(url_decode(path.substr(6)), ec);
    if (ec) return error_answer(400, "invalid ip address");
    if (!list->lift(ip)) return error_answer(404, "not banned");
    return json_answer(200, {{"lifted", ip.to_string()}});
  }
  Flow refusal = error_answer(405, one ? "use DELETE" : "use GET or POST");
  refusal.response().headers().set("allow", one ? "DELETE" : "GET, HEAD, POST");
  return refusal;
}

}  // namespace

std::vector<Route> admin_routes(const std::shared_ptr<AdminState>& state) {
  using Endpoint = Flow (*)(AdminState&, Exchange&);
  struct Entry {
    const char* path;
    Kind kind;
    Endpoint endpoint;
  };
  // Read-only endpoints take the state as const; adapted here so that the table has one type.
  static constexpr Entry table[] = {
      {"/", Kind::read, [](AdminState& s, Exchange& ex) { return endpoint_list(s, ex); }},
      {"/livez", Kind::read, [](AdminState& s, Exchange& ex) { return livez(s, ex); }},
      {"/readyz", Kind::read, [](AdminState& s, Exchange& ex) { return readyz(s, ex); }},
      {"/metrics", Kind::read, [](AdminState& s, Exchange& ex) { return metrics(s, ex); }},
      {"/config", Kind::read, [](AdminState& s, Exchange& ex) { return config(s, ex); }},
      {"/upstreams", Kind::read, [](AdminState& s, Exchange& ex) { return upstreams(s, ex); }},
      {"/drain", Kind::action, [](AdminState& s, Exchange& ex) { return drain(s, ex); }},
      {"/reload", Kind::action, [](AdminState& s, Exchange& ex) { return reload(s, ex); }},
  };
  std::vector<Route> routes;
  for (const Entry& e : table) {
    Route r;
    r.name = std::string("admin") + (e.path[1] ? "_" + std::string(e.path + 1) : "_index");
    r.path = e.path;
    r.prefix = false;
    r.origin = [state, e](Exchange& ex) {
      Flow refusal = Flow::next();
      if (!method_allowed(ex, e.kind, refusal)) return refusal;
      return e.endpoint(*state, ex);
    };
    routes.push_back(std::move(r));
  }
  Route b;
  b.name = "admin_bans";
  b.path = "/bans";
  b.prefix = true;
  b.origin = [state](Exchange& ex) { return bans(*state, ex); };
  routes.push_back(std::move(b));
  return routes;
}

}  // namespace gatehouse::detail
