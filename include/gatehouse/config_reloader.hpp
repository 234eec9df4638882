// ConfigReloader: reads the configuration file again and swaps it into the running Gateway,
// without dropping a request (the `gatehouse` program's SIGHUP, an admin endpoint's reload).
#pragma once
#include <cstddef>
#include <mutex>
#include <string>

#include "gatehouse/config.hpp"
#include "gatehouse/gateway.hpp"
#include "gatehouse/reload_result.hpp"

namespace gatehouse {

/// Puts `config` in force on `gateway` (Gateway::reload with its listeners, global middleware,
/// routes and options); the counterpart of apply() for a gateway that runs.
ReloadSummary reload(const GatewayConfig& config, Gateway& gateway);

/// Keeps a gateway in step with its configuration file. Each reload() reads the file, validates
/// it completely (TLS files and verifiers included), builds what changed (keeping upstreams with
/// their connection pools, verifiers with their keys, token minters and middleware whose
/// definition is the same: see load_config with `previous`) and swaps it in (Gateway::reload).
/// An invalid file changes nothing: the gateway goes on with the configuration it has.
class ConfigReloader {
 public:
  /// `current`: the configuration `gateway` was built from (with apply()), before or after start().
  ConfigReloader(Gateway& gateway, std::string file, GatewayConfig current, ConfigRegistries registries = {});

  /// Never throws. Thread-safe: calls are serialized. Requests that arrive after it returned see
  /// the new configuration (as Gateway::reload, it may be called from a request handler, an admin
  /// endpoint say). Reports the outcome through the library logger (info, or error with the JSON
  /// path) and as a config_reload security event.
  ReloadResult reload() noexcept;

  const std::string& file() const noexcept { return file_; }

 private:
  /// A config_reload security event, when the configuration has a security_events reporter.
  void report_reload_event(const ReloadResult& result);

  Gateway& gateway_;
  const std::string file_;
  const ConfigRegistries registries_;
  std::mutex mu_;
  GatewayConfig current_;  // the configuration in force; guarded by mu_
};

}  // namespace gatehouse
