#include "admin/redact.hpp"

#include <initializer_list>

#include <nlohmann/json.hpp>

#include "util/text.hpp"

namespace gatehouse::detail {
namespace {

using nlohmann::json;

std::string normalized(std::string_view name) {
  std::string n = to_lower_ascii(name);
  for (char& c : n)
    if (c == '-') c = '_';
  return n;
}

bool ends_with_any(std::string_view s, std::initializer_list<std::string_view> suffixes) {
  for (std::string_view x : suffixes)
    if (s.size() > x.size() && s.ends_with(x)) return true;
  return false;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (to_lower_ascii(s[i]) != prefix[i]) return false;
  return true;
}

// A string that is a credential whatever its member is called: an Authorization value or a PEM key.
bool is_credential_text(std::string_view s) {
  for (std::string_view scheme : {"bearer ", "basic ", "digest ", "negotiate "})
    if (istarts_with(s, scheme)) return true;
  return s.find("-----BEGIN") != std::string_view::npos && s.find("PRIVATE KEY") != std::string_view::npos;
}

// Members of a JWK that hold private or symmetric key material (RFC 7518 section 6).
bool is_private_jwk_member(std::string_view name) {
  static constexpr std::string_view members[] = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"};
  for (std::string_view m : members)
    if (name == m) return true;
  return false;
}

json redacted() { return json(std::string(kRedacted)); }

json redact(const json& j) {
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    if (is_credential_text(s)) return redacted();
    return json(redact_url_credentials(s));
  }
  if (j.is_array()) {
    json out = json::array();
    for (const json& e : j) out.push_back(redact(e));
    return out;
  }
  if (!j.is_object()) return j;
  const bool jwk = j.contains("kty");
  // {"name": "authorization", "value": "..."}: a header given as a pair.
  bool secret_pair = false;
  if (auto n = j.find("name"); n != j.end() && n->is_string() && j.contains("value"))
    secret_pair = is_secret_name(n->get_ref<const std::string&>());
  json out = json::object();
  for (const auto& [name, value] : j.items()) {
    const bool plain = value.is_boolean() || value.is_null();  // a flag can never be a secret
    const bool secret = is_secret_name(name) || (jwk && is_private_jwk_member(name)) ||
                        (secret_pair && name == "value");
    out[name] = secret && !plain ? redacted() : redact(value);
  }
  return out;
}

}  // namespace

bool is_secret_name(std::string_view name) {
  const std::string n = normalized(name);
  // These name where a secret is kept, or which header carries it, not the secret itself.
  if (ends_with_any(n, {"_file", "_files", "_env", "_path", "_id", "_uri", "_url", "_endpoint", "_header", "_name"}))
    return false;
  static constexpr std::string_view exact[] = {
      "secret",        "password",      "passwd",     "passphrase", "token",           "key",
      "keys",          "private_key",   "privatekey", "api_key",    "apikey",          "x_api_key",
      "authorization", "proxy_authorization", "cookie", "set_cookie", "credentials", "access_token",
      "refresh_token", "id_token",      "bearer",     "jwk"};
  for (std::string_view e : exact)
    if (n == e) return true;
  return ends_with_any(n, {"_secret", "_password", "_passwd", "_passphrase", "_token", "_key", "_apikey",
                           "_credentials"});
}

std::string redact_url_credentials(std::string_view text) {
  std::string out;
  std::size_t from = 0;
  for (;;) {
    const std::size_t scheme_end = text.find("://", from);
    if (scheme_end == std::string_view::npos) break;
    const std::size_t host_start = scheme_end + 3;
    std::size_t authority_end = text.find_first_of("/?#", host_start);
    if (authority_end == std::string_view::npos) authority_end = text.size();
    const std::string_view authority = text.substr(host_start, authority_end - host_start);
    const std::size_t at = authority.rfind('@');
    out.append(text.substr(from, host_start - from));
    if (at != std::string_view::npos) {
      out.append(kRedacted);
      out.append(authority.substr(at));
    } else {
      out.append(authority);
    }
    from = authority_end;
  }
  out.append(text.substr(from));
  return out;
}

json redact_secrets(const json& config) { return redact(config); }

}  // namespace gatehouse::detail
