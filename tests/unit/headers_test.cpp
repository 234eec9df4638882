#include <doctest/doctest.h>

#include "gatehouse/headers.hpp"

#include <stdexcept>

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

TEST_CASE("remove_if keeps the other fields in order; a predicate that throws loses or doubles none") {
  Headers h;
  for (const char* n : {"a", "drop-1", "b", "drop-2", "c", "boom", "drop-3", "d"}) h.add(n, "v");
  CHECK(h.remove_if([](const Headers::Field& f) { return f.name.starts_with("drop-") && f.name != "drop-3"; }) == 2);
  REQUIRE(h.size() == 6);
  CHECK(h[0].name == "a");
  CHECK(h[1].name == "b");
  CHECK(h[2].name == "c");
  CHECK(h[3].name == "boom");
  CHECK(h[4].name == "drop-3");
  CHECK(h[5].name == "d");
  // Throws at "boom" after "a" went: "a" stays gone, everything from "boom" on stays, once.
  CHECK_THROWS(h.remove_if([](const Headers::Field& f) {
    if (f.name == "boom") throw std::runtime_error("predicate failed");
    return f.name == "a";
  }));
  REQUIRE(h.size() == 5);
  CHECK(h[0].name == "b");
  CHECK(h[1].name == "c");
  CHECK(h[2].name == "boom");
  CHECK(h[3].name == "drop-3");
  CHECK(h[4].name == "d");
}
