// libFuzzer target: the configuration loader, JSON text to GatewayConfig (lib/config/).
//
// Input: the text of a configuration file. load_config must either build a configuration or throw
// ConfigError with a JSON path and a reason, which must be printable and bounded: never crash,
// hang, leak or throw anything else. The process works in an empty temporary directory (relative
// file names resolve there), and inputs that would reach outside it when loaded are only parsed:
// URLs (key sources, introspection), event sinks and the admin listener, and access logs, which
// open files for writing or sockets.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "config/json.hpp"
#include "gatehouse/config.hpp"

namespace {

using nlohmann::json;

[[noreturn]] void invariant_failed(const char* what, std::string_view detail) {
  std::fprintf(stderr, "config_fuzz: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// True when loading `j` could touch anything outside the process and its directory.
bool reaches_out(const json& j, int depth = 0) {
  if (depth > 64) return true;
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    return s.starts_with("http") || s.starts_with("HTTP") || s == "access_log" || s.find('/') == 0 ||
           s.find("..") != std::string::npos;
  }
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      if (key == "security_events" || key == "admin" || key == "sinks") return true;
      if (reaches_out(value, depth + 1)) return true;
    }
  }
  if (j.is_array()) {
    for (const auto& v : j)
      if (reaches_out(v, depth + 1)) return true;
  }
  return false;
}

bool printable(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n') return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char dir[] = "/tmp/gatehouse-config-fuzz.XXXXXX";
  if (!::mkdtemp(dir) || ::chdir(dir) != 0) std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // The loader's own parser first: the JSON layer is fuzzed on every input.
  json parsed;
  try {
    parsed = gatehouse::detail::config_json::parse_json(text);
  } catch (const gatehouse::ConfigError& e) {
    if (std::string_view(e.what()).size() > 4096) invariant_failed("error message too long", e.what());
    return 0;
  }
  if (reaches_out(parsed)) return 0;
  try {
    const gatehouse::GatewayConfig config = gatehouse::load_config(text);
    if (config.listeners.empty() || config.routes.empty()) invariant_failed("loaded without listeners or routes", text);
  } catch (const gatehouse::ConfigError& e) {
    const std::string_view what = e.what();
    if (what.size() > 4096 || !printable(e.reason())) invariant_failed("unsafe error message", what);
    if (!e.path().empty() && e.path().front() != '/') invariant_failed("error path is not a JSON pointer", e.path());
  }
  return 0;
}
