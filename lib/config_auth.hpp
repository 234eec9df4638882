// Option parsing for the "authenticate" and "authorize" built-in middleware of the JSON config.
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "gatehouse/middleware.hpp"

namespace gatehouse::detail {

/// Validate `options` (at JSON path `path`) and build the middleware; throws ConfigError.
std::shared_ptr<const Middleware> make_authenticate(const nlohmann::json& options, const std::string& path);
std::shared_ptr<const Middleware> make_authorize(const nlohmann::json& options, const std::string& path);

}  // namespace gatehouse::detail
