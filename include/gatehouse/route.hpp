// Route: which requests go where, and through which extra middleware.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gatehouse/middleware.hpp"
#include "gatehouse/origin.hpp"

namespace gatehouse {

/// Matching: host (exact, "*.example.com" for any subdomain, or empty for any), path (exact or
/// prefix; the longest matching prefix wins; exact beats prefix; a specific host beats a wildcard,
/// which beats any host), methods (empty: any). A prefix "/api" matches "/api" and "/api/x" but not
/// "/apix".
struct Route {
  std::string name{};
  std::string host{};
  std::string path = "/";
  bool prefix = true;
  std::vector<std::string> methods{};
  /// When set, the matched path prefix is replaced by this before forwarding ("" strips it).
  std::optional<std::string> rewrite_prefix{};
  /// Run after the gateway's global middleware, for this route's requests only.
  std::vector<std::shared_ptr<const Middleware>> middleware{};
  /// What answers: an upstream or a local handler (see Origin).
  Origin origin{};
  /// For an upstream origin: replaces the upstream's retry policy for this route's requests
  /// (null: the upstream's).
  std::shared_ptr<const RetryPolicy> retry_policy{};
  /// Names of the listeners (ListenerOptions::name) that serve this route; empty: every listener.
  /// On other listeners its paths answer 404, as when nothing matches, and never fall through to
  /// a broader route there (such as "/"): internal and admin routes stay off the public listener.
  std::vector<std::string> listeners{};
};

}  // namespace gatehouse
