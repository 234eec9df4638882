#include <doctest/doctest.h>

#include <string>

#include "core/canonical_path.hpp"

using namespace gatehouse;
using namespace gatehouse::detail;

namespace {

std::string canonical(std::string_view path, PathPolicy policy = {}) {
  std::string out;
  const PathVerdict v = canonicalize_path(path, policy, out);
  return v == PathVerdict::ok ? out : "ERROR: " + std::string(path_verdict_reason(v));
}

}  // namespace

TEST_CASE("canonical path: RFC 3986 5.2.4 dot-segment removal") {
  CHECK(canonical("/a/b/c/./../../g") == "/a/g");
  CHECK(canonical("/mid/content=5/../6") == "/mid/6");
  CHECK(canonical("/a/b/..") == "/a/");
  CHECK(canonical("/a/b/.") == "/a/b/");
  CHECK(canonical("/..") == "/");
  CHECK(canonical("/../../etc/passwd") == "/etc/passwd");
  CHECK(canonical("/.") == "/");
  CHECK(canonical("/a/...") == "/a/...");  // not a dot-segment
  CHECK(canonical("/a/.b/..c") == "/a/.b/..c");
  CHECK(canonical("/") == "/");
}

TEST_CASE("canonical path: escapes of unreserved characters are decoded, others uppercased") {
  CHECK(canonical("/%7euser/%41%2d%5F%2e") == "/~user/A-_.");
  CHECK(canonical("/a%2a%3f%25") == "/a%2A%3F%25");  // '*', '?', '%' stay escaped
  CHECK(canonical("/%252e%252e/") == "/%252e%252e/");  // decoded once only, never twice
  CHECK(canonical("/%c3%a9") == "/%C3%A9");
  // Dot-segments spelled with escapes, in any case, are dot-segments.
  CHECK(canonical("/a/%2e%2E/b") == "/b");
  CHECK(canonical("/a/.%2e/b") == "/b");
  CHECK(canonical("/a/%2E/b") == "/a/b");
}

TEST_CASE("canonical path: bytes not allowed raw in a path are escaped, controls refused") {
  CHECK(canonical("/a|b{c}\"<>^`[]") == "/a%7Cb%7Bc%7D%22%3C%3E%5E%60%5B%5D");
  CHECK(canonical("/a b") == "/a%20b");
  CHECK(canonical("/\xc3\xa9") == "/%C3%A9");
  CHECK(canonical("/a\x01") == "ERROR: control character in path");
  CHECK(canonical("/a\x7f") == "ERROR: control character in path");
  CHECK(canonical("/a$b&c'd(e)f*g+h,i;j=k:l@m!n") == "/a$b&c'd(e)f*g+h,i;j=k:l@m!n");
}

TEST_CASE("canonical path: repeated slashes merge unless the policy keeps them") {
  CHECK(canonical("//a///b//") == "/a/b/");
  CHECK(canonical("//a//b//", {.merge_slashes = false}) == "//a//b//");
  CHECK(canonical("/a//..", {.merge_slashes = false}) == "/a/");
}

TEST_CASE("canonical path: encoded slash, backslash and NUL follow the policy") {
  CHECK(canonical("/a%2Fb") == "ERROR: encoded slash in path");
  CHECK(canonical("/a%2fb", {.encoded_slash = PathEscapeAction::keep_encoded}) == "/a%2Fb");
  CHECK(canonical("/a%2fb/..", {.encoded_slash = PathEscapeAction::as_slash}) == "/a/");
  CHECK(canonical("/a\\b") == "ERROR: backslash in path");
  CHECK(canonical("/a%5cb") == "ERROR: backslash in path");
  CHECK(canonical("/a\\b%5c", {.backslash = PathEscapeAction::keep_encoded}) == "/a%5Cb%5C");
  CHECK(canonical("/x\\..\\a", {.backslash = PathEscapeAction::as_slash}) == "/a");
  CHECK(canonical("/a%00") == "ERROR: encoded NUL in path");
  CHECK(canonical("/a%00", {.encoded_nul = PathEscapeAction::keep_encoded}) == "/a%00");
  CHECK(canonical("/a%00", {.encoded_nul = PathEscapeAction::as_slash}) == "ERROR: encoded NUL in path");
}

TEST_CASE("canonical path: dot-segments disguised behind ';' or a kept escape are refused") {
  const PathPolicy keep{.encoded_slash = PathEscapeAction::keep_encoded, .backslash = PathEscapeAction::keep_encoded};
  CHECK(canonical("/a/..;/b") == "ERROR: dot-segment disguised in path");
  CHECK(canonical("/a/.;x/b") == "ERROR: dot-segment disguised in path");
  CHECK(canonical("/a/b;..") == "ERROR: dot-segment disguised in path");
  CHECK(canonical("/a/..%2Fb", keep) == "ERROR: dot-segment disguised in path");
  CHECK(canonical("/a/x%2F..%2F..%2Fb", keep) == "ERROR: dot-segment disguised in path");
  CHECK(canonical("/a/..%5Cb", keep) == "ERROR: dot-segment disguised in path");
  CHECK(canonical("/a;v=1/b;..x") == "/a;v=1/b;..x");  // parameters that are not dot-segments
  CHECK(canonical("/a/b%2Fc", keep) == "/a/b%2Fc");
}

TEST_CASE("canonical path: malformed escapes and relative paths are refused") {
  CHECK(canonical("/a%") == "ERROR: invalid percent-escape in path");
  CHECK(canonical("/a%4") == "ERROR: invalid percent-escape in path");
  CHECK(canonical("/a%g1") == "ERROR: invalid percent-escape in path");
  CHECK(canonical("a/b") == "ERROR: invalid request target");
  CHECK(canonical("") == "ERROR: invalid request target");
}

TEST_CASE("canonical path: canonicalizing twice changes nothing") {
  const char* inputs[] = {"/a/./b/../%2e%2E/c//d/", "/%7e%41%2a/x;y", "/a|b/%C3%a9/..", "//x/../..//y/."};
  for (const char* in : inputs) {
    CAPTURE(in);
    const std::string once = canonical(in);
    CHECK(canonical(once) == once);
    // Escapes always send a path down the slow path; anything else canonical takes the fast one.
    if (once.find('%') == std::string::npos) CHECK_FALSE(path_needs_work(once));
  }
}

TEST_CASE("canonical target: the path is rewritten in place, the query kept, fragments refused") {
  std::string t = "/a/../b%7e?x=/../%2e&y=%7e";
  CHECK(canonicalize_target(t, {}) == PathVerdict::ok);
  CHECK(t == "/b~?x=/../%2e&y=%7e");
  t = "/a#frag";
  CHECK(canonicalize_target(t, {}) == PathVerdict::fragment);
  t = "/a?b#frag";
  CHECK(canonicalize_target(t, {}) == PathVerdict::fragment);
  t = "?x";
  CHECK(canonicalize_target(t, {}) == PathVerdict::not_absolute);
}

TEST_CASE("canonical target: a clean path is left untouched, without a copy") {
  const char* clean[] = {"/", "/api/v1/orders/42", "/files/report.pdf?download=1", "/a-b_c~d/e;f=g", "/a.b/c..d"};
  for (const char* c : clean) {
    CAPTURE(c);
    std::string t = c;
    const char* before = t.data();
    CHECK_FALSE(path_needs_work(std::string_view(t).substr(0, t.find('?'))));
    CHECK(canonicalize_target(t, {}) == PathVerdict::ok);
    CHECK(t == c);
    CHECK(t.data() == before);
  }
}
