// The admin API: probes, metrics, the running configuration, upstreams, drain and reload, served on
// a listener of its own (loopback by default) that public listeners never route to.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "gatehouse/reload_result.hpp"
#include "gatehouse/tls_options.hpp"

namespace gatehouse {

/// The admin listener (Gateway::admin). Answers are JSON except /metrics. Endpoints:
/// GET /livez, /readyz, /metrics, /config, /upstreams; POST /drain, /reload (see
/// docs/observability.md). A hook left empty makes its endpoint answer 404 (metrics, config) or
/// 501 (reload). Hooks run on the admin listener's own thread, never on a worker.
struct AdminOptions {
  std::string address = "127.0.0.1";  ///< any other than loopback needs `token` or mTLS
  std::uint16_t port = 9901;          ///< 0 picks a free port (see Gateway::admin_endpoint)
  /// TLS on the admin listener; with client_ca_file set, only clients with a certificate signed by
  /// that CA get through the handshake (mTLS-only).
  std::optional<ServerTls> tls{};
  /// When not empty, every request must carry `Authorization: Bearer <token>` (compared in
  /// constant time, never logged). 16 to 4096 visible ASCII characters.
  std::string token{};
  /// Renders the metrics in the Prometheus text format, for GET /metrics.
  std::function<std::string()> metrics{};
  /// The running configuration as JSON text (comments allowed), for GET /config; secrets are
  /// replaced by "[redacted]" before it is served.
  std::function<std::string()> running_config{};
  /// Loads the configuration again, for POST /reload (ConfigReloader::reload fits). May throw
  /// ConfigError (422) too.
  std::function<ReloadResult()> reload{};
  /// What POST /drain does after readiness turned 503; empty: Gateway::stop(). A program that
  /// waits for a signal to stop can raise that signal here.
  std::function<void()> drain{};
};

}  // namespace gatehouse
