// libFuzzer target: the two decoders every token segment goes through, checked against their
// contracts (lib/auth/base64url.hpp, lib/auth/strict_json.hpp). The whole input is used by both.
//   base64url: whatever decodes re-encodes to exactly the input (one accepted encoding per byte
//     string), and encoding the input decodes back to it.
//   strict JSON: whatever it accepts, nlohmann's ordinary parser accepts as the same value, and its
//     serialization parses strictly to the same value again; what it alone refuses is refused for a
//     duplicate member name or nesting deeper than 32 levels.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "auth/base64url.hpp"
#include "auth/strict_json.hpp"

namespace {

namespace auth = gatehouse::auth;
using json = nlohmann::json;

[[noreturn]] void invariant_failed(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "b64_json_fuzz: invariant failed: %s %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

void check_base64url(std::string_view input) {
  std::string decoded;
  if (auth::base64url_decode(input, decoded)) {
    if (decoded.size() != input.size() / 4 * 3 + (input.size() % 4 == 0 ? 0 : input.size() % 4 - 1)) {
      invariant_failed("decoded length");
    }
    if (auth::base64url_encode(decoded) != input) invariant_failed("two encodings of one byte string");
  } else if (!decoded.empty() && input.size() % 4 == 1) {
    invariant_failed("output left behind after a refused length");
  }
  const std::string encoded = auth::base64url_encode(input);
  const auto back = auth::base64url_decode(encoded);
  if (!back || *back != input) invariant_failed("encode then decode is not the identity");
}

void check_strict_json(std::string_view input) {
  json strict;
  const char* why = nullptr;
  const bool ok = auth::parse_strict_json(input, strict, why);
  const json plain = json::parse(input.begin(), input.end(), nullptr, /*allow_exceptions=*/false);
  if (ok) {
    if (plain.is_discarded() || plain != strict) invariant_failed("strict and plain parsers disagree");
    const std::string text = strict.dump();
    json again;
    if (!auth::parse_strict_json(text, again, why) || again != strict) invariant_failed("dump does not round-trip");
    return;
  }
  if (why == nullptr) invariant_failed("refused without a reason");
  const std::string_view reason = why;
  if (plain.is_discarded()) {
    if (reason != "invalid JSON") invariant_failed("invalid JSON refused for another reason:", reason);
  } else if (reason != "duplicate JSON member name" && reason != "JSON nested too deeply") {
    invariant_failed("valid JSON refused for an unexpected reason:", reason);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_base64url(input);
  check_strict_json(input);
  return 0;
}
