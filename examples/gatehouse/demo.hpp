#pragma once
#include <functional>

#include <gatehouse/gateway.hpp>

namespace gatehouse_demo {
/// Starts two demo services on loopback and a gateway (HTTP :8080, HTTPS :8443) in front of them,
/// prints curl commands, and hands the gateway to `run` until it stops.
int run_demo(const std::function<int(gatehouse::Gateway&)>& run);
}  // namespace gatehouse_demo
