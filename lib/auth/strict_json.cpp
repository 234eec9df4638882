#include "auth/strict_json.hpp"

#include <cstddef>
#include <vector>

namespace gatehouse::auth {
namespace {

constexpr int kMaxDepth = 32;

struct ParseState {
  std::vector<std::size_t> members;  // member names seen, one counter per open object
  const char* why = nullptr;
};

}  // namespace

bool parse_strict_json(std::string_view text, nlohmann::json& out, const char*& why) {
  using Event = nlohmann::json::parse_event_t;
  ParseState state;
  ParseState* s = &state;  // one pointer keeps the std::function free of heap allocation
  auto callback = [s](int depth, Event event, nlohmann::json& parsed) {
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        if (depth >= kMaxDepth && !s->why) s->why = "JSON nested too deeply";
        if (event == Event::object_start) s->members.push_back(0);
        break;
      case Event::key:
        if (!s->members.empty()) ++s->members.back();
        break;
      case Event::object_end:
        // A repeated name overwrites the earlier member, so the object ends up smaller than the
        // number of names the parser saw.
        if (!s->members.empty()) {
          if (s->members.back() != parsed.size() && !s->why) s->why = "duplicate JSON member name";
          s->members.pop_back();
        }
        break;
      default:
        break;
    }
    return true;
  };
  out = nlohmann::json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/false);
  if (out.is_discarded()) {
    why = "invalid JSON";
    return false;
  }
  if (state.why) {
    why = state.why;
    return false;
  }
  return true;
}

}  // namespace gatehouse::auth
