// The "token_minters" section, the "mint_identity_token" middleware and the "jwks" route target of
// the JSON configuration.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "gatehouse/config.hpp"
#include "gatehouse/middleware.hpp"
#include "gatehouse/route.hpp"

namespace gatehouse::detail {

using MinterMap = std::map<std::string, std::shared_ptr<const auth::TokenMinter>, std::less<>>;

/// The top-level "token_minters" section: name -> minter options.
MinterMap make_token_minters(const nlohmann::json& section, const std::string& path);

/// The "mint_identity_token" middleware: {"minter": name, "header": name}.
std::shared_ptr<const Middleware> make_mint_identity_token(const nlohmann::json& options, const std::string& path,
                                                           const ConfigContext& context);

/// A route's "jwks": the name of a minter whose JWKS the route serves.
Handler make_jwks_handler(const nlohmann::json& value, const std::string& path, const ConfigContext& context);

}  // namespace gatehouse::detail
