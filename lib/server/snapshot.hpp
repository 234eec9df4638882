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
std::shared_ptr<GatewayShared> build_snapshot(const GatewayDefinition& definition);

}  // namespace gatehouse::detail
