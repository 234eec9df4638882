// Building a gateway's configuration snapshot (GatewayShared): used by Gateway::start() and by
// every reload, so that both check and build exactly the same way.
#pragma once
#include <memory>

#include "gatehouse/gateway.hpp"
#include "server/worker.hpp"

namespace gatehouse::detail {

/// Builds and checks the snapshot of `definition`: routes (an origin each, paths, listener names),
/// addresses, trusted-proxy CIDRs, and the TLS contexts of the listeners, whose certificate files
/// are read now (so a reload picks up rotated certificates). Listener ids and the generation are
/// left to the caller (server/reload.hpp). Throws std::invalid_argument for a bad definition, or
/// what loading a TLS file throws; has no effect on anything running.
/// `metrics` (null: off): the gateway's families, which the snapshot's routes get their series
/// from.
std::shared_ptr<GatewayShared> build_snapshot(const GatewayDefinition& definition,
                                              std::shared_ptr<GatewayMetrics> metrics = nullptr);

/// Gives each listener of `s` its metrics series, labelled by its name or else by the address it
/// is bound to: after bind_listeners (a port 0 has become a real one), before any worker sees `s`.
void attach_listener_metrics(GatewayShared& s);

}  // namespace gatehouse::detail
