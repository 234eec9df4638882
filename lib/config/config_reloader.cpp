#include "gatehouse/config_reloader.hpp"

#include "gatehouse/security_events.hpp"

#include <exception>
#include <string>
#include <utility>

#include "config/reload_reuse.hpp"
#include "util/log.hpp"

namespace gatehouse {

ReloadSummary reload(const GatewayConfig& config, Gateway& gateway) {
  GatewayDefinition next;
  next.options = config.options;
  next.listeners = config.listeners;
  next.middleware = config.middleware;
  next.routes = config.routes;
  return gateway.reload(std::move(next));
}

ConfigReloader::ConfigReloader(Gateway& gateway, std::string file, GatewayConfig current, ConfigRegistries registries)
    : gateway_(gateway), file_(std::move(file)), registries_(std::move(registries)), current_(std::move(current)) {}

void ConfigReloader::report_reload_event(const ReloadResult& result) {
  // The reporter in force after the attempt: the new configuration's when it was applied,
  // otherwise the running one's (a refused file changes nothing, the refusal is reported there).
  SecurityEvents* events = nullptr;
  {
    std::lock_guard lock(mu_);
    events = current_.options.security_events.get();
  }
  if (!events) return;
  SecurityEvent e;
  e.kind = SecurityEventKind::config_reload;
  e.outcome = result.ok ? SecurityEventOutcome::success : SecurityEventOutcome::failure;
  e.action = result.ok ? "config-reloaded" : "config-reload-refused";
  e.reason = result.ok ? "configuration reloaded" : result.error;
  e.rule_id = result.error_path;
  e.label("file", file_);
  if (result.ok) {
    e.label("generation", std::to_string(result.summary.generation));
    e.label("listeners_opened", std::to_string(result.summary.listeners_opened));
    e.label("listeners_closed", std::to_string(result.summary.listeners_closed));
  }
  events->report(std::move(e));
}

ReloadResult ConfigReloader::reload() noexcept {
  ReloadResult result;
  try {
    std::lock_guard lock(mu_);
    GatewayConfig next = load_config_file(file_, registries_, current_);
    result.summary = gatehouse::reload(next, gateway_);
    if (next.reuse) {
      result.objects_reused = next.reuse->reused();
      result.objects_built = next.reuse->built();
    }
    current_ = std::move(next);
    result.ok = true;
    const ReloadSummary& s = result.summary;
    result.changes.push_back("generation " + std::to_string(s.generation));
    result.changes.push_back(std::to_string(s.listeners_opened) + " listener(s) opened, " +
                             std::to_string(s.listeners_closed) + " closed, " + std::to_string(s.listeners_kept) +
                             " kept");
    result.changes.push_back(std::to_string(result.objects_reused) + " object(s) reused, " +
                             std::to_string(result.objects_built) + " built");
  } catch (const ConfigError& e) {
    result.error = e.what();
    result.error_path = e.path();
  } catch (const std::exception& e) {
    result.error = e.what();
  } catch (...) {
    result.error = "unknown error";
  }
  try {
    report_reload_event(result);
  } catch (...) {
    // Out of memory for the event: the log line below still says what happened.
  }
  if (result.ok) {
    const std::string generation = std::to_string(result.summary.generation);
    const std::string opened = std::to_string(result.summary.listeners_opened);
    const std::string closed = std::to_string(result.summary.listeners_closed);
    const std::string reused = std::to_string(result.objects_reused);
    const std::string built = std::to_string(result.objects_built);
    detail::log(nullptr, LogLevel::info, "configuration reloaded",
                {{"file", file_},
                 {"generation", generation},
                 {"listeners_opened", opened},
                 {"listeners_closed", closed},
                 {"objects_reused", reused},
                 {"objects_built", built}});
  } else {
    detail::log(nullptr, LogLevel::error, "configuration reload refused, the running configuration stays",
                {{"file", file_}, {"path", result.error_path}, {"error", result.error}});
  }
  return result;
}

}  // namespace gatehouse
