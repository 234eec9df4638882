// The PathPolicy a fuzz input picks with one selector byte: bit 0 merge_slashes, bits 1-2
// encoded_slash, bits 3-4 backslash (0 reject, 1 keep_encoded, 2 as_slash, 3 reject), bit 5
// encoded_nul (keep_encoded when set).
#pragma once
#include "gatehouse/path_policy.hpp"

namespace gatehouse::fuzz {

inline PathEscapeAction escape_action(unsigned bits) {
  switch (bits & 3) {
    case 1: return PathEscapeAction::keep_encoded;
    case 2: return PathEscapeAction::as_slash;
    default: return PathEscapeAction::reject;
  }
}

inline PathPolicy path_policy_from(unsigned selector) {
  return PathPolicy{.merge_slashes = (selector & 1) != 0,
                    .encoded_slash = escape_action(selector >> 1),
                    .backslash = escape_action(selector >> 3),
                    .encoded_nul = (selector & 32) ? PathEscapeAction::keep_encoded : PathEscapeAction::reject};
}

}  // namespace gatehouse::fuzz
