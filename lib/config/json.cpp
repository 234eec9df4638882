// JSON text -> json for the configuration and the files it names: comments allowed, duplicate keys
// and syntax errors reported precisely.

#include "config/json.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace gatehouse::detail::config_json {
namespace {

// nlohmann keeps the last of duplicate keys silently; a parser callback sees every key, so track
// the keys of each open object (and the path to it) and stop at the first repeat.
struct DuplicateKeyCheck {
  struct Frame {
    bool is_object;
    std::string path;
    std::string key;          // current key (objects)
    std::size_t index = 0;    // elements started so far (arrays)
    std::set<std::string> keys;
  };
  std::vector<Frame> stack;

  std::string next_child_path() const {
    if (stack.empty()) return "";
    const Frame& f = stack.back();
    return f.is_object ? child(f.path, f.key) : child(f.path, f.index - 1);
  }
  void element_starts() {
    if (!stack.empty() && !stack.back().is_object) ++stack.back().index;
  }

  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start: {
        element_starts();
        std::string path = next_child_path();
        stack.push_back(Frame{event == json::parse_event_t::object_start, std::move(path), {}, 0, {}});
        break;
      }
      case json::parse_event_t::key: {
        Frame& f = stack.back();
        f.key = parsed.get<std::string>();
        if (!f.keys.insert(f.key).second) {
          throw ConfigError(child(f.path, f.key), "duplicate key " + quote(f.key));
        }
        break;
      }
      case json::parse_event_t::value:
        element_starts();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        stack.pop_back();
        break;
    }
    return true;
  }
};

}  // namespace

json parse_json(std::string_view text, bool parser_detail) {
  DuplicateKeyCheck check;
  try {
    return json::parse(text.begin(), text.end(),
                       [&check](int depth, json::parse_event_t event, json& parsed) {
                         return check(depth, event, parsed);
                       },
                       /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    // e.byte counts characters read, the offending one included; turn it into line:column.
    const std::size_t offset = std::min<std::size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    const std::string_view before = text.substr(0, offset);
    const std::size_t line = 1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
    const std::size_t last_newline = before.rfind('\n');
    const std::size_t column = last_newline == std::string_view::npos ? offset + 1 : offset - last_newline;
    std::string reason = "invalid JSON at line " + std::to_string(line) + ", column " + std::to_string(column);
    if (parser_detail) {
      // what() reads "[json.exception.parse_error.101] parse error at line 1, column 2: <detail>".
      std::string detail = e.what();
      if (auto col = detail.find("column "); col != std::string::npos) {
        if (auto colon = detail.find(": ", col); colon != std::string::npos) detail = detail.substr(colon + 2);
      }
      reason += ": " + detail;
    }
    throw ConfigError("", reason);
  }
}

}  // namespace gatehouse::detail::config_json
