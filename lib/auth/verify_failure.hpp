#pragma once
// What the token verifiers (JWT, introspection) say when they refuse a token. One definition in
// a header: in a unity build their file-local copies met in one file and clashed.
#include <cstdio>
#include <string>
#include <utility>

#include "gatehouse/auth/token_verifier.hpp"

namespace gatehouse::auth {

inline VerifyResult token_failure(TokenError e, std::string detail) { return VerifyResult(e, std::move(detail)); }

/// A time in seconds since the epoch, as the token carried it (no fraction).
inline std::string epoch_seconds_text(double s) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.0f", s);
  return buf;
}

}  // namespace gatehouse::auth
