#include <doctest/doctest.h>

#include <string>

#include "auth/base64url.hpp"

using gatehouse::auth::base64url_decode;
using gatehouse::auth::base64url_encode;

TEST_CASE("base64url: RFC 4648 vectors round-trip without padding") {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg"},         {"fo", "Zm8"},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    CHECK(base64url_encode(plain) == encoded);
    const auto decoded = base64url_decode(encoded);
    REQUIRE(decoded);
    CHECK(*decoded == plain);
  }
}

TEST_CASE("base64url: uses the URL alphabet and round-trips every byte value") {
  CHECK(base64url_encode(std::string("\xfb\xff", 2)) == "-_8");
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= all.size(); n += 1) {
    const std::string part = all.substr(0, n);
    const auto back = base64url_decode(base64url_encode(part));
    REQUIRE(back);
    CHECK(*back == part);
  }
}

TEST_CASE("base64url: strict decoding refuses everything but the canonical form") {
  CHECK_FALSE(base64url_decode("Zg=="));        // padding
  CHECK_FALSE(base64url_decode("Zm8="));        // padding
  CHECK_FALSE(base64url_decode("Zm9v YmFy"));   // space
  CHECK_FALSE(base64url_decode("Zm9v\nYmFy"));  // newline
  CHECK_FALSE(base64url_decode("Zm9vYmFy\r"));  // trailing CR
  CHECK_FALSE(base64url_decode("+/8"));         // standard alphabet
  CHECK_FALSE(base64url_decode("-/8"));
  CHECK_FALSE(base64url_decode("Z"));           // 4n+1 characters can encode nothing
  CHECK_FALSE(base64url_decode("Zm9vY"));
  CHECK_FALSE(base64url_decode("Zh"));          // "f" with non-zero trailing bits
  CHECK_FALSE(base64url_decode("Zm9"));         // "fo" with non-zero trailing bits
  CHECK_FALSE(base64url_decode(std::string("Zm\0v", 4)));
  CHECK_FALSE(base64url_decode("Zm9v\xc3\xa9"));  // non-ASCII
  CHECK(base64url_decode("Zg"));
  CHECK(base64url_decode("Zm8"));
}
