// Upstream health: active health checks, passive outlier detection, the panic threshold and slow
// start, and the state of each endpoint as the gateway sees it (Upstream::endpoint_states()).
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gatehouse {

/// Active checks: the gateway probes every endpoint of the upstream itself, once per upstream
/// (not once per worker), and takes those that fail out of the rotation.
struct HealthCheckOptions {
  enum class Kind : unsigned char {
    http,  ///< GET `path`; healthy when the status is in `expected_statuses`
    tcp,   ///< healthy when a connection opens (and, for a TLS upstream, its handshake completes)
  };
  Kind kind = Kind::http;
  std::string path = "/";
  /// Host header of the check; empty: the endpoint's configured host ("host:port" as written).
  std::string host{};
  /// Inclusive ranges of statuses that count as healthy.
  std::vector<std::pair<unsigned, unsigned>> expected_statuses{{200, 399}};
  std::chrono::milliseconds interval{5'000};
  /// Each wait is interval ± this share of it, drawn at random, so that many gateways (and many
  /// upstreams) do not probe in step. 0..0.5.
  double jitter = 0.1;
  std::chrono::milliseconds timeout{2'000};  ///< connect, TLS handshake and the status line
  unsigned healthy_threshold = 2;    ///< consecutive passes that bring an unhealthy endpoint back
  unsigned unhealthy_threshold = 3;  ///< consecutive failures that take a healthy one out
};

/// Passive checks: the outcomes of real requests, from every worker, eject an endpoint that keeps
/// failing for base_ejection_time × (times it was ejected), at most max_ejection_time.
struct OutlierDetectionOptions {
  /// Consecutive 5xx responses (gateway failures included) that eject; 0: never on this count.
  unsigned consecutive_5xx = 5;
  /// Consecutive gateway failures that eject: connection refused or reset, connect or response
  /// timeout, and 502, 503 and 504 answers. 0: never on this count.
  unsigned consecutive_gateway_failures = 5;
  std::chrono::milliseconds base_ejection_time{30'000};
  std::chrono::milliseconds max_ejection_time{300'000};
  /// At most this share of the endpoints is ejected at once (one may always be, as in Envoy).
  unsigned max_ejection_percent = 10;
};

/// Everything about an upstream's health (UpstreamOptions::health).
struct UpstreamHealthOptions {
  std::optional<HealthCheckOptions> active{};
  std::optional<OutlierDetectionOptions> outlier_detection{};
  /// When fewer than this percentage of the endpoints are usable (healthy and not ejected), the
  /// gateway balances over all of them, as if every one were healthy, rather than overload the
  /// few left or fail everything. 0: never; an upstream with none usable then answers 503.
  unsigned panic_threshold_percent = 50;
  /// An endpoint that comes back (passes its checks again, or its ejection ends) starts at 10% of
  /// its weight and reaches all of it linearly over this window. 0: no ramp. Applies to the
  /// round_robin, least_request and random policies (consistent hashing keeps its keys where they are).
  std::chrono::milliseconds slow_start{0};
};

/// One resolved endpoint as the gateway sees it now.
struct EndpointState {
  enum class Health : unsigned char {
    healthy,    ///< active checks pass (or there are none)
    unhealthy,  ///< active checks failed unhealthy_threshold times in a row
  };
  std::string endpoint{};  ///< "host:port" as configured
  std::string address{};   ///< the resolved address, "10.0.0.1:80" or "[::1]:80"
  unsigned weight = 1;     ///< as configured
  Health health = Health::healthy;
  bool ejected = false;                          ///< by outlier detection, for `ejected_for` more
  std::chrono::milliseconds ejected_for{0};
  unsigned ejections = 0;                        ///< the multiplier of the next ejection time
  /// Share of its weight in force now: below 1 while it ramps up after coming back (slow start).
  double weight_factor = 1;
  std::uint64_t checks_passed = 0, checks_failed = 0, ejections_total = 0;
  /// Usable for new requests (healthy, not ejected), panic mode aside.
  bool usable() const noexcept { return health == Health::healthy && !ejected; }
};

}  // namespace gatehouse
