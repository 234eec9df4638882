// Option parsing for the "authenticate" and "authorize" built-in middleware of the JSON config.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "gatehouse/config.hpp"
#include "gatehouse/middleware.hpp"

namespace gatehouse::detail {

using VerifierMap = std::map<std::string, std::shared_ptr<const auth::TokenVerifier>, std::less<>>;

/// The top-level "verifiers" section: name -> {"type": ..., options of that type}.
VerifierMap make_verifiers(const nlohmann::json& section, const std::string& path);

/// One verifier of each type, from its object at `path` (whose "type" was already checked).
std::shared_ptr<const auth::TokenVerifier> make_jwt_verifier(const nlohmann::json& options, const std::string& path);
std::shared_ptr<const auth::TokenVerifier> make_introspection_verifier(const nlohmann::json& options,
                                                                       const std::string& path);
std::shared_ptr<const auth::TokenVerifier> make_api_key_verifier(const nlohmann::json& options, const std::string& path);  // config_api_keys.cpp

/// Validate `options` (at JSON path `path`) and build the middleware; throws ConfigError.
std::shared_ptr<const Middleware> make_authenticate(const nlohmann::json& options, const std::string& path,
                                                    const ConfigContext& context);
std::shared_ptr<const Middleware> make_authorize(const nlohmann::json& options, const std::string& path);

}  // namespace gatehouse::detail
