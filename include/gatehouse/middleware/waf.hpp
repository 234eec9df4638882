// Waf: a web application firewall, ModSecurity v3 running the OWASP Core Rule Set (and your own
// SecRule files). Rules are evaluated on a small pool of threads of its own, never on the I/O
// threads: a request waits for its verdict (Flow::later) while its worker serves other connections.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "gatehouse/middleware.hpp"

namespace gatehouse {
namespace detail {
struct WafState;
}

enum class WafMode : unsigned char {
  block,   ///< a request whose anomaly score reaches the inbound threshold gets 403
  detect,  ///< matches are reported (events, metrics), nothing is refused
};

/// A body longer than WafOptions::request_body_limit.
enum class WafOversizeBody : unsigned char {
  reject,          ///< 413 before the upstream sees any of it
  inspect_prefix,  ///< the rules see the first request_body_limit bytes; the rest passes uninspected
};

/// Rule ids taken out of the evaluation: single ids and inclusive ranges.
struct WafExclusions {
  std::vector<int> ids{};
  std::vector<std::pair<int, int>> ranges{};
};

/// Per-route settings (WafOptions::routes, by route name).
struct WafRouteOptions {
  bool enabled = true;              ///< false: the route is not inspected at all
  std::optional<WafMode> mode{};    ///< empty: WafOptions::mode
  WafExclusions exclude{};          ///< in addition to WafOptions::exclude
};

struct WafOptions {
  WafMode mode = WafMode::block;
  /// CRS paranoia level, 1 (few false positives) to 4 (many rules, many false positives).
  int paranoia_level = 1;
  /// CRS anomaly thresholds: a critical match scores 5, error 4, warning 3, notice 2.
  int inbound_anomaly_threshold = 5;
  int outbound_anomaly_threshold = 4;

  /// Load the OWASP CRS: `crs_setup` first, then `crs_rules_dir`/*.conf.
  bool crs = true;
  std::string crs_setup = "/etc/modsecurity/crs/crs-setup.conf";
  std::string crs_rules_dir = "/usr/share/modsecurity-crs/rules";
  /// Your own SecLang files, loaded after the CRS, in order.
  std::vector<std::string> rule_files{};
  /// SecLang text loaded last (tests, small additions).
  std::string rules{};
  /// Rules excluded everywhere.
  WafExclusions exclude{};
  /// Route name -> its own settings.
  std::map<std::string, WafRouteOptions, std::less<>> routes{};

  /// Bytes of request body the rules see (the body is read ahead of the upstream up to this).
  std::size_t request_body_limit = 128 * 1024;
  WafOversizeBody oversize_body = WafOversizeBody::reject;
  /// Also run the response-header rules (phase 3) on the upstream's answer.
  bool inspect_response_headers = false;

  /// Evaluation threads (shared by every worker of the gateway) and the requests that may wait
  /// for one. Past the queue, or past the time limit, the request is refused with 503, or let
  /// through uninspected when `fail_open` (both counted and reported).
  unsigned threads = 2;
  std::size_t queue_size = 256;
  /// How long a request may wait for its verdict, queueing included.
  std::chrono::milliseconds time_limit{1000};
  bool fail_open = false;
};

/// A rule file that cannot be loaded (syntax, unknown operator, missing file): the message names
/// the file and line as ModSecurity reports them.
class WafError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Counts since construction (all threads).
struct WafStats {
  std::uint64_t inspected = 0;  ///< requests evaluated
  std::uint64_t blocked = 0;    ///< refused by the rules (403) or for a body over the limit (413)
  std::uint64_t detected = 0;   ///< matched the threshold in detect mode
  std::uint64_t overloaded = 0; ///< queue full or time limit passed
};

/// Every request that matches a rule produces a security event of kind waf_match (rule ids,
/// messages, severity, anomaly score, request id), and the gateway's metrics count matches per
/// rule and route, verdicts and evaluation time (docs/threat_protection.md).
class Waf final : public Middleware {
 public:
  /// Loads the rules (once per process for the same rule configuration: instances share them).
  /// Throws WafError for rules that do not load, std::invalid_argument for bad options.
  explicit Waf(WafOptions options);
  ~Waf() override;
  Flow on_request(Exchange& ex) const override;
  Flow on_response(Exchange& ex) const override;

  const WafOptions& options() const noexcept;
  WafStats stats() const noexcept;
  /// Requests queued or being evaluated now.
  std::size_t pending() const noexcept;

 private:
  std::shared_ptr<detail::WafState> state_;
};

}  // namespace gatehouse
