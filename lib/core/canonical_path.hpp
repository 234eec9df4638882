// The one canonical form of a request path. The session rewrites each request's target to it
// before routing, so the router, every middleware (authorization, filtering, logging, events) and
// the upstream all see the same path: a check cannot be bypassed by spelling the path another way.
//
// Canonical form (RFC 3986 section 6.2.2, plus the listener's PathPolicy):
//  - escapes of unreserved characters (ALPHA DIGIT - . _ ~) are decoded, every other escape is
//    kept with uppercase hex digits; bytes that may not appear raw in a path are escaped;
//  - dot-segments are removed (section 5.2.4), after decoding, so %2e%2E is a dot-segment too;
//  - repeated slashes are merged (PathPolicy::merge_slashes);
//  - %2F, '\' (raw or %5C) and %00 are refused, kept encoded or read as '/' (PathPolicy);
//  - a dot-segment disguised behind ';' or a kept %2F or %5C ("..;", "..%2F") is refused: an
//    upstream that strips path parameters or decodes slashes would read it as a dot-segment.
#pragma once
#include <string>
#include <string_view>

#include "gatehouse/path_policy.hpp"

namespace gatehouse::detail {

enum class PathVerdict : unsigned char {
  ok,
  bad_escape,          ///< '%' not followed by two hex digits
  encoded_slash,       ///< %2F under PathEscapeAction::reject
  backslash,           ///< '\' or %5C under reject
  encoded_nul,         ///< %00 under reject
  control_character,   ///< a raw control byte
  disguised_dot_segment,
  fragment,            ///< '#' in a request target (clients never send the fragment)
  not_absolute,        ///< a path that does not start with '/'
};

/// A short reason for a refused path, for the 400 answer and the security event.
std::string_view path_verdict_reason(PathVerdict v) noexcept;

/// False when `path` is canonical under any policy as it stands (no '%', '\', "//", "/." or ";.",
/// and only bytes allowed raw): the fast path, one pass, no writes.
bool path_needs_work(std::string_view path) noexcept;

/// Writes the canonical form of `path` (which starts with '/') to `out`; `out` is unspecified
/// when the verdict is not ok.
PathVerdict canonicalize_path(std::string_view path, const PathPolicy& policy, std::string& out);

/// Rewrites the path of an origin-form target ("/a/../b?q") to its canonical form, in place; the
/// query is left as it is. A target holding '#' is refused. Allocates nothing when the path is
/// already canonical, and otherwise only when the canonical path is longer than the buffer holds.
PathVerdict canonicalize_target(std::string& target, const PathPolicy& policy);

}  // namespace gatehouse::detail
