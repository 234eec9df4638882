// The Prometheus text exposition format 0.0.4: escaping and number formatting.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace gatehouse::detail {

/// A label value between double quotes: backslash, double quote and line feed escaped.
void append_label_value(std::string& out, std::string_view v);
/// HELP text: backslash and line feed escaped.
void append_help_text(std::string& out, std::string_view v);
/// A sample value: shortest round-trip form, "+Inf", "-Inf", "NaN".
void append_sample_value(std::string& out, double v);
void append_sample_value(std::string& out, std::uint64_t v);

}  // namespace gatehouse::detail
