// Client-controlled text made safe for error details and logs.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace gatehouse::auth {

/// At most `max` characters of `s` in quotes, with quotes, backslashes and bytes outside printable
/// ASCII escaped (\xNN), so a hostile kid or claim cannot forge log lines.
std::string printable(std::string_view s, std::size_t max = 64);

}  // namespace gatehouse::auth
