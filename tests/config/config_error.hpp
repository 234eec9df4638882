// error_of: the ConfigError that loading a configuration document raises, for tests that check
// where (path) and why (reason) a configuration is refused. Fails the test when it loads.
#pragma once
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "gatehouse/config.hpp"

namespace gatehouse::test {

inline ConfigError error_of(const std::string& text) {
  try {
    load_config(text);
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("expected a ConfigError for: " << text);
  return ConfigError("", "");
}

inline ConfigError error_of(const nlohmann::json& doc) { return error_of(doc.dump()); }

}  // namespace gatehouse::test
