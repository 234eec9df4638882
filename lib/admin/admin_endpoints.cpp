#include "admin/admin_endpoints.hpp"

#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "admin/redact.hpp"
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
                             "POST /drain", "POST /reload"}}});
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
  return routes;
}

}  // namespace gatehouse::detail
