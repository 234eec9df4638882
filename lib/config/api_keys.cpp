// The "api_keys" type of the top-level "verifiers" section (see config_auth.cpp for the others and
// docs/config.md for the same text with examples):
//
//   {"type": "api_keys",
//    one of  keys: [KEY, ...]  |  keys_file: file holding the same array (JSON, comments allowed),
//    max_key_bytes: 1..65536 (512)}
//   KEY     {sha256: 64 hex digits of SHA-256(key) (required), principal: string (required),
//            scopes: [scope tokens] ([]), id: string (optional label for logs, never the key)}
//
// Errors inside keys_file are reported at ".../keys_file" with the file name and the JSON pointer
// inside the file. A digest is never repeated in a message: someone may have pasted the key itself.

#include "config/auth.hpp"
#include "config/json.hpp"

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/api_key_verifier.hpp"
#include "gatehouse/config.hpp"

namespace gatehouse::detail {
namespace {

using nlohmann::json;

using namespace config_json;

constexpr std::size_t kMaxKeysFileBytes = 16u << 20;

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// RFC 6749 scope-token, as Authorize requires.
bool is_scope_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u == 0x21 || (u >= 0x23 && u <= 0x5b) || (u >= 0x5d && u <= 0x7e);
  });
}

std::string digest(const json& j, const std::string& path) {
  const std::string& s = as_string(j, path);
  const bool hex = std::all_of(s.begin(), s.end(), is_hex);
  if (s.size() != 64 || !hex) {
    // Not echoed: it may be the key itself.
    throw ConfigError(path, "expected the 64 hex digits of SHA-256(key) (printf %s \"$KEY\" | sha256sum), got " +
                                std::to_string(s.size()) + " characters" + (hex ? "" : " that are not all hex digits") +
                                "; never put the key itself in the configuration");
  }
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

std::vector<auth::ApiKey> parse_keys(const json& j, const std::string& path) {
  const json& list = as_array(j, path);
  if (list.empty()) throw ConfigError(path, "at least one key is needed");
  std::vector<auth::ApiKey> keys;
  std::vector<std::string> key_paths;
  std::size_t i = 0;
  for (const json& entry : list) {
    const std::string p = child(path, i++);
    Object o(entry, p, {"sha256", "principal", "scopes", "id"});
    auth::ApiKey k;
    k.sha256 = digest(o.require("sha256"), o.at("sha256"));
    k.principal = name_string(o.require("principal"), o.at("principal"), "principal");
    if (const json* s = o.find("scopes")) {
      const std::string sp = o.at("scopes");
      std::size_t n = 0;
      for (const json& item : as_array(*s, sp)) {
        const std::string ip = child(sp, n++);
        const std::string& scope = as_string(item, ip);
        if (!is_scope_token(scope)) {
          throw ConfigError(ip, "invalid scope " + quote(scope) + ": printable ASCII without spaces, '\"' or '\\'");
        }
        if (std::find(k.scopes.begin(), k.scopes.end(), scope) != k.scopes.end()) {
          throw ConfigError(ip, "duplicate " + quote(scope));
        }
        k.scopes.push_back(scope);
      }
    }
    if (const json* id = o.find("id")) k.id = name_string(*id, o.at("id"), "id");
    for (std::size_t m = 0; m < keys.size(); ++m) {
      if (keys[m].sha256 == k.sha256) throw ConfigError(o.at("sha256"), "same sha256 as " + key_paths[m]);
      if (!k.id.empty() && keys[m].id == k.id) {
        throw ConfigError(o.at("id"), "id " + quote(k.id) + " is also used by " + key_paths[m]);
      }
    }
    keys.push_back(std::move(k));
    key_paths.push_back(p);
  }
  return keys;
}

// Duplicate keys are errors in the keys file as in the configuration itself (nlohmann would keep
// the last one silently): track the keys of each open object and its JSON pointer.
class DuplicateKeys {
 public:
  bool operator()(int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start: {
        std::string p = element_path();
        frames_.push_back({event == json::parse_event_t::object_start, std::move(p), {}, 0, {}});
        break;
      }
      case json::parse_event_t::key: {
        Frame& f = frames_.back();
        f.key = parsed.get<std::string>();
        if (!f.keys.insert(f.key).second) throw ConfigError(child(f.path, f.key), "duplicate key " + quote(f.key));
        break;
      }
      case json::parse_event_t::value:
        element_path();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        frames_.pop_back();
        break;
    }
    return true;
  }

 private:
  struct Frame {
    bool object;
    std::string path;
    std::string key;
    std::size_t next = 0;  // arrays: index of the next element
    std::set<std::string> keys;
  };
  // The pointer of the value that starts now (and counts it, in an array).
  std::string element_path() {
    if (frames_.empty()) return "";
    Frame& f = frames_.back();
    return f.object ? child(f.path, f.key) : child(f.path, f.next++);
  }
  std::vector<Frame> frames_;
};

json read_keys_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::string text;
  if (in) {
    in.seekg(0, std::ios::end);
    const auto size = in.tellg();
    if (size > static_cast<std::streamoff>(kMaxKeysFileBytes)) throw ConfigError("", "larger than 16 MiB");
    in.seekg(0, std::ios::beg);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (!in && !in.eof()) throw ConfigError("", "cannot read the file");
  DuplicateKeys check;
  try {
    return json::parse(text, std::ref(check), /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    const std::size_t offset = std::min<std::size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    const std::string_view before = std::string_view(text).substr(0, offset);
    const auto line = 1 + std::count(before.begin(), before.end(), '\n');
    const std::size_t nl = before.rfind('\n');
    const std::size_t column = nl == std::string_view::npos ? offset + 1 : offset - nl;
    throw ConfigError("", "invalid JSON at line " + std::to_string(line) + ", column " + std::to_string(column));
  }
}

}  // namespace

std::shared_ptr<const auth::TokenVerifier> make_api_key_verifier(const json& options, const std::string& path) {
  Object o(options, path, {"type", "keys", "keys_file", "max_key_bytes"});
  auth::ApiKeyVerifierOptions v;
  const std::string which = o.one_of({"keys", "keys_file"});
  const std::string wp = o.at(which);
  if (which == "keys") {
    v.keys = parse_keys(*o.find("keys"), wp);
  } else {
    const std::string file = readable_file(*o.find("keys_file"), wp);
    try {
      v.keys = parse_keys(read_keys_file(file), "");
    } catch (const ConfigError& e) {
      throw ConfigError(wp, "in " + quote(file) + (e.path().empty() ? std::string() : " at " + e.path()) + ": " +
                                e.reason());
    }
  }
  v.max_key_bytes = static_cast<std::size_t>(
      o.integer("max_key_bytes", 1, 65536, static_cast<std::int64_t>(v.max_key_bytes)));
  try {
    return std::make_shared<const auth::ApiKeyVerifier>(std::move(v));
  } catch (const std::invalid_argument& e) {
    throw ConfigError(path, e.what());
  }
}

}  // namespace gatehouse::detail
