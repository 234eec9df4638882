// libFuzzer target: request-path canonicalization (lib/core/canonical_path.cpp).
//
// Input: one selector byte, then the path (a '/' is put in front when missing). The selector's
// bits pick the PathPolicy: bit 0 merge_slashes, bits 1-2 encoded_slash, bits 3-4 backslash,
// bit 5 encoded_nul (reject, keep_encoded, as_slash; 3 means reject).
// Properties of an accepted path: canonicalizing it again changes nothing; it has no dot-segment,
// plain or disguised behind ';' or a kept %2F / %5C; every escape is two uppercase hex digits and
// never one of an unreserved character; no raw byte outside pchar and '/'; no '\'; %2F, %5C and
// %00 only when the policy keeps them; no "//" when slashes merge. canonicalize_target() agrees
// with canonicalize_path() and leaves the query alone.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/canonical_path.hpp"
#include "fuzz/path_policy_selector.hpp"

namespace {

using gatehouse::PathEscapeAction;
using gatehouse::PathPolicy;
namespace d = gatehouse::detail;

[[noreturn]] void invariant_failed(const char* what, std::string_view in, std::string_view out) {
  std::fprintf(stderr, "canonical_path_fuzz: %s\n  in:  %.*s\n  out: %.*s\n", what, static_cast<int>(in.size()),
               in.data(), static_cast<int>(out.size()), out.data());
  std::abort();
}


bool unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}
bool raw_ok(char c) { return unreserved(c) || std::string_view("!$&'()*+,;=:@/").find(c) != std::string_view::npos; }
bool upper_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }
int hex(char c) { return c <= '9' ? c - '0' : c - 'A' + 10; }

void check_pieces(std::string_view seg, std::string_view in, std::string_view out) {
  // Pieces cut at ';' and at %2F / %5C: none may be "." or "..".
  std::size_t start = 0;
  for (std::size_t i = 0; i <= seg.size(); ++i) {
    std::size_t skip = 0;
    if (i == seg.size() || seg[i] == ';') skip = 1;
    else if (seg.substr(i, 3) == "%2F" || seg.substr(i, 3) == "%5C") skip = 3;
    if (!skip) continue;
    const std::string_view piece = seg.substr(start, i - start);
    if (piece == "." || piece == "..") invariant_failed("dot-segment in the output", in, out);
    start = i + skip;
    i += skip - 1;
  }
}

void check_canonical(std::string_view out, const PathPolicy& p, std::string_view in) {
  if (out.empty() || out.front() != '/') invariant_failed("output does not start with '/'", in, out);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const char c = out[i];
    if (c == '%') {
      if (i + 2 >= out.size() || !upper_hex(out[i + 1]) || !upper_hex(out[i + 2]))
        invariant_failed("escape not in uppercase hex", in, out);
      const char v = static_cast<char>(hex(out[i + 1]) * 16 + hex(out[i + 2]));
      if (unreserved(v)) invariant_failed("escape of an unreserved character", in, out);
      if (v == '/' && p.encoded_slash != PathEscapeAction::keep_encoded) invariant_failed("%2F kept", in, out);
      if (v == '\\' && p.backslash != PathEscapeAction::keep_encoded) invariant_failed("%5C kept", in, out);
      if (v == 0 && p.encoded_nul != PathEscapeAction::keep_encoded) invariant_failed("%00 kept", in, out);
      i += 2;
    } else if (!raw_ok(c)) {
      invariant_failed("byte not allowed raw in a path", in, out);
    }
  }
  if (p.merge_slashes && out.find("//") != std::string_view::npos) invariant_failed("slashes not merged", in, out);
  std::size_t start = 1;
  while (start <= out.size()) {
    std::size_t end = out.find('/', start);
    if (end == std::string_view::npos) end = out.size();
    check_pieces(out.substr(start, end - start), in, out);
    start = end + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const unsigned sel = data[0];
  const PathPolicy policy = gatehouse::fuzz::path_policy_from(sel);
  std::string path(reinterpret_cast<const char*>(data + 1), size - 1);
  if (path.empty() || path.front() != '/') path.insert(path.begin(), '/');

  std::string out;
  const d::PathVerdict v = d::canonicalize_path(path, policy, out);
  if (v == d::PathVerdict::ok) {
    check_canonical(out, policy, path);
    std::string again;
    if (d::canonicalize_path(out, policy, again) != d::PathVerdict::ok || again != out)
      invariant_failed("not idempotent", path, again);
    if (!d::path_needs_work(path) && out != path) invariant_failed("the fast path skipped work", path, out);
  } else if (d::path_verdict_reason(v).empty()) {
    invariant_failed("refusal without a reason", path, "");
  }

  // The target form: same path, query untouched; a '#' anywhere is refused.
  if (path.find_first_of("?#") == std::string::npos) {
    std::string target = path + "?q=/../%2e";
    const d::PathVerdict tv = d::canonicalize_target(target, policy);
    if (tv != v) invariant_failed("target and path verdicts differ", path, target);
    if (tv == d::PathVerdict::ok && target != out + "?q=/../%2e") invariant_failed("target rewrite differs", path, target);
  }
  return 0;
}
