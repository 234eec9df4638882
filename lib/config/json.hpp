// JSON validation helpers shared by the configuration loaders (lib/config/, and the config
// factories beside each built-in middleware and verifier): strict types, errors at the JSON pointer
// of the offending key, did-you-mean for unknown keys.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gatehouse/config.hpp"
#include "util/text.hpp"

namespace gatehouse::detail::config_json {

using json = nlohmann::json;

inline constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();
inline constexpr std::int64_t duration_max = 2'147'483'647;  // ~24.8 days; keeps timer math far from overflow

/// JSON text (comments allowed) -> json. A duplicate key is a ConfigError at its JSON pointer; a
/// syntax error is a ConfigError at "" reading "invalid JSON at line L, column C", followed by the
/// parser's reason when `parser_detail` (that reason quotes the text it stopped at, so files that
/// may hold secrets leave it out).
json parse_json(std::string_view text, bool parser_detail = true);

// Text for messages.

/// JSON string form, escaped, so that control bytes in user input never reach a message raw.
std::string quote(std::string_view s);
/// A short rendering of any JSON value for "got ..." messages.
std::string describe(const json& j);
/// JSON pointer of a member or an element of `path`.
std::string child(const std::string& path, std::string_view key);
std::string child(const std::string& path, std::size_t index);
std::string join(const std::vector<std::string>& names);
std::optional<std::string> suggest(std::string_view word, const std::vector<std::string>& candidates);
/// " (did you mean \"x\"?)" when a candidate is close to `word`, else "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);
/// Which of `names` (text, path) an error message mentions first (the longer at the same spot);
/// `fallback` if none.
const std::string& path_mentioned(std::string_view what, const std::vector<std::pair<std::string, std::string>>& names,
                                  const std::string& fallback);
/// A TLS setup error names the file it failed on: throws it as a ConfigError at the path of the
/// key that named that file (`files`: file name, path), else at `fallback_path`.
[[noreturn]] void throw_at_file(const std::exception& e, const std::vector<std::pair<std::string, std::string>>& files,
                                const std::string& fallback_path);

// Checks of plain values.

bool is_token(std::string_view s);
using detail::has_control;
/// No CR, LF or NUL.
bool is_header_value(std::string_view s);
bool is_dns_name(std::string_view s);
bool is_ipv4(std::string_view s);
bool is_ipv6(std::string_view s);
/// A DNS name or an IPv4 address.
bool is_host(std::string_view s);

// Typed access: each throws ConfigError at `path` when the value does not fit.

std::int64_t as_integer(const json& j, const std::string& path, std::int64_t lo, std::int64_t hi);
const std::string& as_string(const json& j, const std::string& path);
bool as_bool(const json& j, const std::string& path);
const json& as_array(const json& j, const std::string& path);
const json& as_object(const json& j, const std::string& path);
/// A file that must exist and be readable now.
std::string readable_file(const json& j, const std::string& path);
/// A non-empty string without control characters; `what` names it in errors.
std::string name_string(const json& j, const std::string& path, std::string_view what);
/// An HTTP header name (a token).
std::string header_name(const json& j, const std::string& path);
/// {"name": "value", ...} with header names that are tokens and values without CR, LF or NUL.
std::vector<std::pair<std::string, std::string>> header_map(const json& j, const std::string& path);
/// An array of distinct non-empty strings; `what` names one in errors.
std::vector<std::string> string_list(const json& j, const std::string& path, std::string_view what);

/// `a` followed by `b`: allowed-key lists built from shared parts.
inline std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// An object with a fixed set of allowed keys. Unknown keys are reported up front, so a typo is
// named as such instead of surfacing as a "missing key" later.
class Object {
 public:
  Object(const json& j, std::string path, std::vector<std::string> allowed)
      : j_(as_object(j, path)), path_(std::move(path)) {
    for (const auto& [key, value] : j_.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      std::string reason = "unknown key " + quote(key);
      if (auto s = suggest(key, allowed)) {
        reason += " (did you mean " + quote(*s) + "?)";
      } else {
        std::sort(allowed.begin(), allowed.end());
        reason += "; allowed keys: " + join(allowed);
      }
      throw ConfigError(child(path_, key), reason);
    }
  }

  const std::string& path() const noexcept { return path_; }
  std::string at(std::string_view key) const { return child(path_, key); }
  const json* find(const std::string& key) const {
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  bool has(const std::string& key) const { return find(key) != nullptr; }
  const json& require(const std::string& key, std::string_view why = {}) const {
    const json* v = find(key);
    if (!v) {
      std::string reason = "missing required key " + quote(key);
      if (!why.empty()) reason += " (" + std::string(why) + ")";
      throw ConfigError(at(key), reason);
    }
    return *v;
  }

  std::int64_t integer(const std::string& key, std::int64_t lo, std::int64_t hi, std::int64_t def) const {
    const json* v = find(key);
    return v ? as_integer(*v, at(key), lo, hi) : def;
  }
  std::chrono::milliseconds duration(const std::string& key, std::chrono::milliseconds def) const {
    const json* v = find(key);
    return v ? std::chrono::milliseconds(as_integer(*v, at(key), 1, duration_max)) : def;
  }
  bool boolean(const std::string& key, bool def) const {
    const json* v = find(key);
    return v ? as_bool(*v, at(key)) : def;
  }
  std::string string(const std::string& key, std::string def) const {
    const json* v = find(key);
    return v ? as_string(*v, at(key)) : std::move(def);
  }

  // Exactly one of `keys` must be present: returns which one.
  std::string one_of(const std::vector<std::string>& keys) const {
    std::string found;
    std::string list;
    for (const auto& k : keys) {
      list += (list.empty() ? "" : ", ") + quote(k);
      if (!find(k)) continue;
      if (!found.empty()) throw ConfigError(at(k), "give only one of " + quote(found) + " and " + quote(k));
      found = k;
    }
    if (found.empty()) throw ConfigError(path_, "needs exactly one of " + list);
    return found;
  }

 private:
  const json& j_;
  std::string path_;
};

/// The "realm" key of an auth middleware (default "gatehouse"): it is sent in a quoted-string, so
/// it must not contain '"', '\\' or control characters.
std::string realm_option(const Object& o);

}  // namespace gatehouse::detail::config_json
