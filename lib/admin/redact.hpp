// Secrets out of the running configuration before GET /config shows it.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace gatehouse::detail {

/// The text that replaces every secret.
inline constexpr std::string_view kRedacted = "[redacted]";

/// True when a member of this name holds a secret: secret, password, token, key, keys,
/// private_key, api_key, authorization, cookie and the like, or a name ending in _secret,
/// _password, _token or _key. Names that only point at a secret (ending in _file, _env, _path,
/// _id, _uri, _url, _endpoint, _header) are not secrets. Case and '-'/'_' do not matter.
bool is_secret_name(std::string_view name);

/// `text` with the user:password of a URL ("https://user:pw@host/") replaced; other text as is.
std::string redact_url_credentials(std::string_view text);

/// A copy of `config` with secrets replaced by "[redacted]": the value (whole object or array
/// included) of every member is_secret_name() accepts, unless it is a boolean or null; the "value"
/// of an object whose "name" is such a name (a header given as {"name", "value"}); private members
/// of a JWK (d, p, q, dp, dq, qi, k, oth); strings that are credentials themselves ("Bearer ...",
/// "Basic ..."); and the user information of URLs.
nlohmann::json redact_secrets(const nlohmann::json& config);

}  // namespace gatehouse::detail
