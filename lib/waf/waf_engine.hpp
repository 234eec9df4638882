// The rules side of the WAF: a loaded ModSecurity rule set (CRS + the user's files) and one
// transaction's evaluation over an owned copy of the request. Runs on the WAF pool's threads; no
// ModSecurity type leaks out of lib/waf.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gatehouse/middleware/waf.hpp"

namespace gatehouse::detail {

/// What the rules see of a request, copied off the exchange (the evaluation may outlive it when
/// the time limit passes). Header names and values live in one string.
struct WafRequest {
  std::string client_ip;
  int client_port = 0;
  std::string server_ip = "0.0.0.0";
  int server_port = 0;
  std::string method;
  std::string target;
  std::string version = "1.1";
  std::string header_bytes;
  struct Field {
    std::size_t name_at, name_len, value_at, value_len;
  };
  std::vector<Field> headers;
  std::string body;
  bool body_truncated = false;  ///< `body` is only the first part (oversize policy inspect_prefix)

  void add_header(std::string_view name, std::string_view value);
};

/// One matched rule that logs (CRS rules that only set variables do not).
struct WafMatch {
  int rule_id = 0;
  int severity = 0;  ///< syslog levels as ModSecurity uses them: 2 critical, 3 error, 4 warning, 5 notice
  std::string message;
  std::string data;  ///< the matched data as the rule's logdata says (may hold request bytes)
};

/// One phase's outcome.
struct WafVerdict {
  bool intervene = false;  ///< the rules refuse the request (block mode)
  int status = 0;          ///< the status they ask for (403, 400...)
  bool over_threshold = false;  ///< the anomaly score reached the inbound threshold (either mode)
  int anomaly_score = 0;
  std::vector<WafMatch> matches;  ///< new matches of this phase
};

/// Per-transaction policy.
struct WafTransactionPolicy {
  bool detect_only = false;
  const WafExclusions* global = nullptr;
  const WafExclusions* route = nullptr;
};

class WafEngine {
 public:
  /// Loads (or finds already loaded: one rule set per distinct configuration in the process) the
  /// rules of `options`. Throws WafError.
  static std::shared_ptr<const WafEngine> load(const WafOptions& options);
  /// The SecLang text `load` compiles for these options (exposed for tests and docs).
  static std::string rules_text(const WafOptions& options);

  ~WafEngine();
  WafEngine(const WafEngine&) = delete;
  WafEngine& operator=(const WafEngine&) = delete;

  struct Impl;
  explicit WafEngine(std::unique_ptr<Impl> impl);
  const Impl& impl() const noexcept { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

/// One request's ModSecurity transaction; from one thread at a time.
class WafTransaction {
 public:
  WafTransaction(std::shared_ptr<const WafEngine> engine, const WafTransactionPolicy& policy);
  ~WafTransaction();
  WafTransaction(const WafTransaction&) = delete;
  WafTransaction& operator=(const WafTransaction&) = delete;

  /// Phases 1 and 2: connection, URI, headers, body.
  WafVerdict inspect_request(const WafRequest& request);
  /// Phase 3: the response status and headers (fields as in WafRequest).
  WafVerdict inspect_response(int status, const std::string& header_bytes,
                              const std::vector<WafRequest::Field>& headers);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gatehouse::detail
