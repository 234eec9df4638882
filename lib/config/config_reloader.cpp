#include "gatehouse/config_reloader.hpp"

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
  } catch (const ConfigError& e) {
    result.error = e.what();
    result.error_path = e.path();
  } catch (const std::exception& e) {
    result.error = e.what();
  } catch (...) {
    result.error = "unknown error";
  }
  // SECURITY EVENT (config_reload): emit the event here once the security-event stream exists:
  // outcome success/failure, file_, result.summary.generation, result.error_path, result.error.
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
