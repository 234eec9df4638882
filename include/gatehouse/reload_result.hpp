// What a configuration reload did: Gateway::reload's summary, and the outcome ConfigReloader and
// the admin API's POST /reload report.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gatehouse {

/// What Gateway::reload changed.
struct ReloadSummary {
  std::uint64_t generation = 0;      ///< 1 for the configuration start() built, +1 per reload
  std::size_t listeners_opened = 0;  ///< listeners the new definition adds (new sockets)
  std::size_t listeners_closed = 0;  ///< listeners it removes (their connections drain)
  std::size_t listeners_kept = 0;    ///< unchanged address, port and TLS mode: same sockets
};

/// How one reload went: ConfigReloader::reload returns it, and an admin reload hook
/// (AdminOptions::reload) returns it for POST /reload (200 with `changes` when ok, 422 with
/// `error` and `error_path` when refused).
struct ReloadResult {
  bool ok = false;
  /// Why it was refused: ConfigError::what() ("<json path>: <reason>"), or the gateway's reason
  /// (a new listener's port already in use, say). Empty when ok.
  std::string error{};
  /// The JSON pointer of the offending key when a ConfigError refused it ("" otherwise).
  std::string error_path{};
  /// What changed (when ok).
  ReloadSummary summary{};
  std::size_t objects_reused = 0;  ///< upstreams, verifiers, token minters, middleware kept as they were
  std::size_t objects_built = 0;   ///< those built anew (new or changed)
  /// One line per change, for operators (POST /reload shows them). ConfigReloader fills them from
  /// the counts above; a hook of your own may say what it wants.
  std::vector<std::string> changes{};
};

}  // namespace gatehouse
