#include "auth/openid_discovery.hpp"

namespace gatehouse::detail {

std::optional<Url> discovery_url(std::string_view issuer, std::string* error) {
  std::string text(issuer);
  if (!text.empty() && text.back() == '/') text.pop_back();
  text += "/.well-known/openid-configuration";
  return Url::parse(text, error);
}

asio::awaitable<std::string> fetch_discovery(HttpClient& client, const Url& url, const std::string& issuer,
                                             nlohmann::json& metadata) {
  // Built outside the co_await: g++ 12 miscompiles initializer lists inside one.
  HttpClient::Fields fields{{"Accept", "application/json"}};
  HttpReply reply = co_await client.request("GET", url.target, std::move(fields));
  if (!reply.ok()) co_return "discovery " + url.text() + ": " + reply.error;
  if (reply.status != 200) co_return "discovery " + url.text() + ": HTTP status " + std::to_string(reply.status);
  metadata = nlohmann::json::parse(reply.body, nullptr, false);
  if (!metadata.is_object()) co_return "discovery " + url.text() + ": the answer is not a JSON object";
  const auto it = metadata.find("issuer");
  if (it == metadata.end() || !it->is_string() || it->get_ref<const std::string&>() != issuer) {
    co_return "discovery " + url.text() + ": \"issuer\" in the metadata is not " + issuer;
  }
  co_return std::string();
}

std::string metadata_url(const nlohmann::json& metadata, const char* key, bool allow_plain_http,
                         std::optional<Url>& out) {
  const auto it = metadata.find(key);
  if (it == metadata.end() || !it->is_string()) return std::string("the metadata has no \"") + key + "\"";
  std::string error;
  out = Url::parse(it->get_ref<const std::string&>(), &error);
  if (!out) return std::string("\"") + key + "\" in the metadata: " + error;
  if (!out->tls && !allow_plain_http) {
    out.reset();
    return std::string("\"") + key + "\" in the metadata is not https";
  }
  return std::string();
}

}  // namespace gatehouse::detail
