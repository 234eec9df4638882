// JSON parsing for untrusted token segments.
#pragma once
#include <string_view>

#include <nlohmann/json.hpp>

namespace gatehouse::auth {

/// Parses `text` into `out`. Besides JSON syntax and UTF-8 it refuses duplicate member names in any
/// object (two parsers must never disagree on which "alg" or "sub" counts) and nesting deeper than
/// 32 levels. On failure returns false and sets `why` to a short static reason.
bool parse_strict_json(std::string_view text, nlohmann::json& out, const char*& why);

}  // namespace gatehouse::auth
