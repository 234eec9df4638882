// How a listener treats request paths that can be spelled several ways. The gateway rewrites
// every request path to one canonical form before routing, before any middleware decides on it
// and before it is forwarded (docs/threat_protection.md, "Request hygiene").
#pragma once

namespace gatehouse {

/// What to do with an escape (or byte) that would change a path's meaning if an upstream read it
/// differently from the gateway.
enum class PathEscapeAction : unsigned char {
  reject,        ///< 400, the request never reaches a route
  keep_encoded,  ///< forwarded as the escape (%2F, %5C, %00): data inside one segment
  as_slash,      ///< read as '/' (then dot-segments and repeated slashes are resolved); not for NUL
};

struct PathPolicy {
  /// "/a//b" becomes "/a/b", so that "//admin" cannot slip past a rule on "/admin".
  bool merge_slashes = true;
  /// %2F in a path.
  PathEscapeAction encoded_slash = PathEscapeAction::reject;
  /// A backslash, raw or as %5C (Windows servers read it as '/').
  PathEscapeAction backslash = PathEscapeAction::reject;
  /// %00 (as_slash is treated as reject).
  PathEscapeAction encoded_nul = PathEscapeAction::reject;
};

}  // namespace gatehouse
