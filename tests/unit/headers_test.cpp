#include <doctest/doctest.h>

#include "gatehouse/headers.hpp"

using gatehouse::Headers;

TEST_CASE("header lookup ignores case and keeps arrival order") {
  Headers h;
  h.add("Content-Type", "text/plain");
  h.add("X-A", "1");
  h.add("x-a", "2");
  CHECK(h.get("content-type") == "text/plain");
  CHECK(h.count("X-a") == 2);
  CHECK(h.get("x-A") == "1");
  CHECK_FALSE(h.get("missing"));
  h.set("X-A", "3");
  CHECK(h.count("x-a") == 1);
  CHECK(h[1].value == "3");
  CHECK(h.remove("CONTENT-TYPE") == 1);
  CHECK(h.size() == 1);
}

TEST_CASE("pieces from a fragmented parse make whole fields") {
  Headers h;
  h.append_name_piece("Ho");
  h.append_name_piece("st");
  h.append_value_piece("exa");
  h.append_value_piece("mple.com");
  h.append_name_piece("Empty");
  CHECK(h.commit_field());
  REQUIRE(h.size() == 2);
  CHECK(h[0].name == "Host");
  CHECK(h[0].value == "example.com");
  CHECK(h[1].name == "Empty");
  CHECK(h[1].value.empty());
}
