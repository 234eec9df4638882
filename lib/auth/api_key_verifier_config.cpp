// The "api_keys" type of the top-level "verifiers" section (see docs/config.md for the same text
// with examples):
//
//   {"type": "api_keys",
//    one of  keys: [KEY, ...]  |  keys_file: file holding the same array (JSON, comments allowed),
//    max_key_bytes: 1..65536 (512)}
//   KEY     {sha256: 64 hex digits of SHA-256(key) (required), principal: string (required),
//            scopes: [scope tokens] ([]), id: string (optional label for logs, never the key)}
//
// Errors inside keys_file are reported at ".../keys_file" with the file name and the JSON pointer
// inside the file. A digest is never repeated in a message: someone may have pasted the key itself.

#include "config/builtins.hpp"
#include "config/json.hpp"

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <iterator>
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

bool is_hex(char c) { return hex_value(c) >= 0; }

std::string digest(const json& j, const std::string& path) {
  const std::string& s = as_string(j, path);
  const bool hex = std::all_of(s.begin(), s.end(), is_hex);
  if (s.size() != 64 || !hex) {
    // Not echoed: it may be the key itself.
    throw ConfigError(path, "expected the 64 hex digits of SHA-256(key) (printf %s \"$KEY\" | sha256sum), got " +
                                std::to_string(s.size()) + " characters" + (hex ? "" : " that are not all hex digits") +
                                "; never put the key itself in the configuration");
  }
  return to_lower_ascii(s);
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
  // Duplicate keys are errors here as in the configuration itself; the parser's detail is left out,
  // since it quotes the text (someone may have pasted a key).
  return parse_json(text, /*parser_detail=*/false);
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
