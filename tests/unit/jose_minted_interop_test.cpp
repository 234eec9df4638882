// Tokens minted by gatehouse's TokenMinter must verify with npm `jose` and the served JWKS.
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "gatehouse/auth/token_minter.hpp"

#ifndef GATEHOUSE_SOURCE_DIR
#error "GATEHOUSE_SOURCE_DIR must name the source tree (set in tests/meson.build)"
#endif

using namespace gatehouse::auth;
using nlohmann::json;

namespace {

std::string run_command(const std::string& command, int& status) {
  std::string text;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return text;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) text.append(buf, n);
  status = pclose(pipe);
  return text;
}

}  // namespace

TEST_CASE("jose interop: tokens minted by the gateway verify with npm jose and the served JWKS") {
  const auto dir = std::filesystem::path(GATEHOUSE_SOURCE_DIR) / "tests" / "interop";
  if (!std::filesystem::exists(dir / "node_modules" / "jose" / "package.json")) {
    FAIL("npm package jose is not installed: run `npm ci --prefix tests/interop` (needs Node.js 20+)");
  }
  json input = {{"tokens", json::array()}};
  for (const std::string alg : {"ES256", "EdDSA"}) {
    const TokenMinter m({.algorithm = alg, .issuer = "https://gatehouse.internal", .audience = "svc"});
    const Claims source(json{{"sub", "alice"}, {"scope", "read write"}});
    input["tokens"].push_back({{"alg", alg},
                               {"token", m.mint(source, std::chrono::system_clock::now())},
                               {"jwks", json::parse(m.jwks_json())},
                               {"issuer", "https://gatehouse.internal"},
                               {"audience", "svc"},
                               {"kid", m.kid()}});
  }
  const auto file = std::filesystem::temp_directory_path() / ("gatehouse-minted-" + std::to_string(::getpid()) + ".json");
  std::ofstream(file) << input.dump();
  int status = -1;
  const std::string out =
      run_command("node '" + (dir / "verify_minted.mjs").string() + "' '" + file.string() + "' 2>&1", status);
  std::filesystem::remove(file);
  REQUIRE_MESSAGE(status == 0, "verify_minted.mjs failed: " << out);
  const json doc = json::parse(out, nullptr, /*allow_exceptions=*/false);
  REQUIRE_MESSAGE(doc.is_object(), "verify_minted.mjs printed no JSON: " << out);
  const json& results = doc.at("results");
  REQUIRE(results.size() == 2);
  for (std::size_t i = 0; i < results.size(); ++i) {
    const json& r = results[i];
    CAPTURE(r.dump());
    REQUIRE(r.at("ok") == true);
    CHECK(r.at("kid") == input["tokens"][i]["kid"]);
    CHECK(r.at("payload").at("sub") == "alice");
    CHECK(r.at("payload").at("scope") == "read write");
  }
}
