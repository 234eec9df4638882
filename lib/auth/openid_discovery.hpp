// OpenID Connect Discovery 1.0: an issuer's metadata (jwks_uri, introspection_endpoint, ...).
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include <asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include "net/http_client.hpp"
#include "net/url.hpp"

namespace gatehouse::detail {

/// <issuer>/.well-known/openid-configuration, a trailing '/' of the issuer dropped first (§4).
std::optional<Url> discovery_url(std::string_view issuer, std::string* error = nullptr);

/// Fetches the metadata and checks it: a JSON object whose "issuer" is exactly `issuer` (§4.3:
/// otherwise another issuer's metadata could be passed off as this one's). Returns "" and fills
/// `metadata` on success, else the reason.
asio::awaitable<std::string> fetch_discovery(HttpClient& client, const Url& url, const std::string& issuer,
                                             nlohmann::json& metadata);

/// A URL from the metadata: present, a string, https (or http when allowed). "" on success.
std::string metadata_url(const nlohmann::json& metadata, const char* key, bool allow_plain_http,
                         std::optional<Url>& out);

}  // namespace gatehouse::detail
