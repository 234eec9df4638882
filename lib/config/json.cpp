// The JSON helpers shared by every configuration loader (lib/config/) and every config factory
// beside a built-in extension (lib/middleware/*_config.cpp, lib/auth/*_config.cpp): strict types,
// errors at the JSON pointer of the offending key, did-you-mean for unknown names, and parsing of
// the JSON text itself with duplicate keys refused.

#include "config/json.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <asio/ip/address.hpp>

#include "http1/token.hpp"

namespace gatehouse::detail::config_json {
namespace {

// RFC 6901: '~' and '/' in a key are escaped.
std::string pointer_token(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions, so "prefxi" is one
// edit from "prefix").
std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::string range_text(std::int64_t lo, std::int64_t hi) {
  if (hi == int64_max) return ">= " + std::to_string(lo);
  return "in " + std::to_string(lo) + ".." + std::to_string(hi);
}


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

// ---------------------------------------------------------------------------------------------
// Text helpers

// JSON string form, escaped, so that control bytes in user input never reach a message raw.
std::string quote(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

// A short rendering of a value for "got ..." messages.
std::string describe(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string child(const std::string& path, std::string_view key) {
  return path + "/" + pointer_token(key);
}
std::string child(const std::string& path, std::size_t index) {
  return path + "/" + std::to_string(index);
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// The closest candidate within 2 edits (first one on ties), if any.
std::optional<std::string> suggest(std::string_view word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_distance = 3;
  for (const auto& c : candidates) {
    if (word.size() > c.size() + 2 || c.size() > word.size() + 2) continue;  // cheap reject
    const std::size_t dist = edit_distance(word, c);
    if (dist < best_distance) {
      best_distance = dist;
      best = c;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  auto s = suggest(word, candidates);
  return s ? " (did you mean " + quote(*s) + "?)" : std::string();
}

// ---------------------------------------------------------------------------------------------
// Value checks

bool is_token(std::string_view s) { return is_http_token(s); }

bool is_header_value(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// A DNS name: dot-separated labels of letters, digits and '-' (not at either end), one optional
// trailing dot.
bool is_dns_name(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  if (s.empty() || s.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = s.find('.', start);
    const std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool is_ipv4(std::string_view s) {
  asio::error_code ec;
  asio::ip::make_address_v4(std::string(s), ec);
  return !ec;
}

bool is_ipv6(std::string_view s) {
  if (s.find('%') != std::string_view::npos) return false;
  asio::error_code ec;
  asio::ip::make_address_v6(std::string(s), ec);
  return !ec;
}

// A host name or IPv4 address; all-numeric names must be valid IPv4 ("999.1.1.1" is a typo, not a
// DNS name).
bool is_host(std::string_view s) {
  const bool numeric = !s.empty() && s.find_first_not_of("0123456789.") == std::string_view::npos;
  return numeric ? is_ipv4(s) : is_dns_name(s);
}

// ---------------------------------------------------------------------------------------------
// Typed access to JSON values: every accessor throws ConfigError at the value's path.

std::int64_t as_integer(const json& j, const std::string& path, std::int64_t lo, std::int64_t hi) {
  bool ok = false;
  std::int64_t value = 0;
  if (j.is_number_unsigned()) {
    const auto u = j.get<std::uint64_t>();
    if (u <= static_cast<std::uint64_t>(int64_max)) {
      value = static_cast<std::int64_t>(u);
      ok = true;
    }
  } else if (j.is_number_integer()) {
    value = j.get<std::int64_t>();
    ok = true;
  }
  if (!ok || value < lo || value > hi) {
    throw ConfigError(path, "expected an integer " + range_text(lo, hi) + ", got " + describe(j));
  }
  return value;
}

const std::string& as_string(const json& j, const std::string& path) {
  if (!j.is_string()) throw ConfigError(path, "expected a string, got " + describe(j));
  return j.get_ref<const std::string&>();
}

bool as_bool(const json& j, const std::string& path) {
  if (!j.is_boolean()) throw ConfigError(path, "expected a boolean, got " + describe(j));
  return j.get<bool>();
}

const json& as_array(const json& j, const std::string& path) {
  if (!j.is_array()) throw ConfigError(path, "expected an array, got " + describe(j));
  return j;
}

const json& as_object(const json& j, const std::string& path) {
  if (!j.is_object()) throw ConfigError(path, "expected an object, got " + describe(j));
  return j;
}

// A file that must exist and be readable now, so that a typo fails at load time, not at the first
// TLS handshake.
std::string readable_file(const json& j, const std::string& path) {
  const std::string& file = as_string(j, path);
  if (file.empty()) throw ConfigError(path, "expected a file name, got \"\"");
  if (file.find('\0') != std::string::npos) throw ConfigError(path, "file name contains a NUL byte");
  if (::access(file.c_str(), R_OK) != 0) {
    throw ConfigError(path, "cannot read " + quote(file) + ": " + std::generic_category().message(errno));
  }
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    throw ConfigError(path, "cannot read " + quote(file) + ": it is a directory");
  }
  return file;
}

// Which of `names` an error message is about: the one it mentions first (longer wins at the same
// spot, so "ca.pem" beats "a.pem"). Returns `fallback` if none is mentioned.
const std::string& path_mentioned(std::string_view what, const std::vector<std::pair<std::string, std::string>>& names,
                                  const std::string& fallback) {
  const std::string* path = &fallback;
  std::size_t best_pos = std::string_view::npos, best_len = 0;
  for (const auto& [name, p] : names) {
    if (name.empty()) continue;
    const std::size_t pos = what.find(name);
    if (pos == std::string_view::npos) continue;
    if (pos < best_pos || (pos == best_pos && name.size() > best_len)) {
      best_pos = pos;
      best_len = name.size();
      path = &p;
    }
  }
  return *path;
}

// A TLS setup error names the file it failed on; report it at the key that named that file.
[[noreturn]] void throw_at_file(const std::exception& e, const std::vector<std::pair<std::string, std::string>>& files,
                                const std::string& fallback_path) {
  throw ConfigError(path_mentioned(e.what(), files, fallback_path), e.what());
}

std::string name_string(const json& j, const std::string& path, std::string_view what) {
  const std::string& s = as_string(j, path);
  if (s.empty()) throw ConfigError(path, std::string(what) + " must not be empty");
  if (has_control(s)) throw ConfigError(path, std::string(what) + " must not contain control characters");
  return s;
}

std::string header_name(const json& j, const std::string& path) {
  const std::string& s = as_string(j, path);
  if (!is_token(s)) throw ConfigError(path, "invalid header name " + quote(s) + ": expected an HTTP token");
  return s;
}

// {"name": "value", ...} with header names that are tokens and values without CR, LF or NUL.
std::vector<std::pair<std::string, std::string>> header_map(const json& j, const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, value] : as_object(j, path).items()) {
    const std::string p = child(path, name);
    if (!is_token(name)) throw ConfigError(p, "invalid header name " + quote(name) + ": expected an HTTP token");
    const std::string& v = as_string(value, p);
    if (!is_header_value(v)) throw ConfigError(p, "header value must not contain CR, LF or NUL");
    out.emplace_back(name, v);
  }
  return out;
}

// A list of distinct non-empty strings.
std::vector<std::string> string_list(const json& j, const std::string& path, std::string_view what) {
  std::vector<std::string> out;
  std::size_t i = 0;
  for (const json& item : as_array(j, path)) {
    const std::string p = child(path, i++);
    std::string s = name_string(item, p, what);
    if (std::find(out.begin(), out.end(), s) != out.end()) throw ConfigError(p, "duplicate " + quote(s));
    out.push_back(std::move(s));
  }
  return out;
}

// Quoted in WWW-Authenticate, so it must not be able to end the quoted-string.
std::string realm_option(const Object& o) {
  const json* v = o.find("realm");
  if (!v) return "gatehouse";
  const std::string& s = as_string(*v, o.at("realm"));
  if (!fits_quoted_string(s)) {
    throw ConfigError(o.at("realm"), "must not contain '\"', '\\' or control characters");
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// JSON text -> json, with duplicate keys and syntax errors reported precisely.

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
