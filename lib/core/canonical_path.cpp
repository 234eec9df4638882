#include "core/canonical_path.hpp"

#include <array>
#include <cstring>

#include "util/text.hpp"

namespace gatehouse::detail {
namespace {

enum ByteClass : unsigned char {
  kEscape = 0,   // not allowed raw in a path: written as %XX
  kRaw = 1,      // pchar (unreserved, sub-delims, ':', '@') or '/'
  kControl = 2,  // C0 controls and DEL: refused
  kSpecial = 3,  // '%', '\': decided one by one
};

constexpr std::array<unsigned char, 256> kClasses = [] {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = kControl;
  t[0x7f] = kControl;
  for (char c : std::string_view("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/"))
    t[static_cast<unsigned char>(c)] = kRaw;
  t['%'] = kSpecial;
  t['\\'] = kSpecial;
  return t;
}();

constexpr bool is_unreserved(unsigned char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

void append_escape(std::string& out, unsigned char c) {
  constexpr char kHex[] = "0123456789ABCDEF";
  const char e[3] = {'%', kHex[c >> 4], kHex[c & 0xf]};
  out.append(e, 3);
}

// Writes what a '\' or an escape of '/', '\' or NUL becomes under `action`.
PathVerdict apply(PathEscapeAction action, unsigned char c, PathVerdict refused, std::string& out) {
  if (action == PathEscapeAction::reject || (c == 0 && action == PathEscapeAction::as_slash)) return refused;
  if (action == PathEscapeAction::as_slash) out.push_back('/');
  else append_escape(out, c);
  return PathVerdict::ok;
}

// First pass: escapes decoded (unreserved) or normalized (uppercase), raw bytes escaped.
PathVerdict decode(std::string_view in, const PathPolicy& policy, std::string& out) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    const auto c = static_cast<unsigned char>(in[i]);
    switch (kClasses[c]) {
      case kRaw: out.push_back(static_cast<char>(c)); continue;
      case kControl: return PathVerdict::control_character;
      case kEscape: append_escape(out, c); continue;
      default: break;
    }
    if (c == '\\') {
      if (PathVerdict v = apply(policy.backslash, c, PathVerdict::backslash, out); v != PathVerdict::ok) return v;
      continue;
    }
    if (i + 2 >= in.size()) return PathVerdict::bad_escape;
    const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return PathVerdict::bad_escape;
    i += 2;
    const auto v = static_cast<unsigned char>(hi * 16 + lo);
    PathVerdict verdict = PathVerdict::ok;
    if (is_unreserved(v)) out.push_back(static_cast<char>(v));
    else if (v == '/') verdict = apply(policy.encoded_slash, v, PathVerdict::encoded_slash, out);
    else if (v == '\\') verdict = apply(policy.backslash, v, PathVerdict::backslash, out);
    else if (v == 0) verdict = apply(policy.encoded_nul, v, PathVerdict::encoded_nul, out);
    else append_escape(out, v);
    if (verdict != PathVerdict::ok) return verdict;
  }
  return PathVerdict::ok;
}

bool is_dot_name(std::string_view s) noexcept { return s == "." || s == ".."; }

// A segment that an upstream could still read as a dot-segment: one whose pieces, cut at ';'
// (path parameters) or at a kept %2F or %5C, include "." or "..".
bool disguises_dot_segment(std::string_view seg) noexcept {
  std::size_t start = 0;
  for (std::size_t i = 0; i <= seg.size(); ++i) {
    std::size_t skip = 0;
    if (i == seg.size() || seg[i] == ';') skip = 1;
    else if (seg[i] == '%' && i + 2 < seg.size() && seg[i + 1] == '2' && seg[i + 2] == 'F') skip = 3;
    else if (seg[i] == '%' && i + 2 < seg.size() && seg[i + 1] == '5' && seg[i + 2] == 'C') skip = 3;
    if (!skip) continue;
    if (is_dot_name(seg.substr(start, i - start)) && !(start == 0 && i == seg.size())) return true;
    start = i + skip;
    i += skip - 1;
  }
  return false;
}

// Second pass, in place: RFC 3986 5.2.4 remove_dot_segments over '/'-separated segments, with
// empty segments dropped when merging. The output never outgrows the input, so the write position
// stays behind the read position.
PathVerdict resolve_segments(std::string& s, bool merge_slashes) {
  const std::size_t n = s.size();
  std::size_t w = 1;  // s[0] is '/'
  std::size_t i = 1;
  while (i <= n) {
    std::size_t j = s.find('/', i);
    if (j == std::string::npos) j = n;
    const std::string_view seg(s.data() + i, j - i);
    const bool last = j == n;
    if (seg == "..") {
      if (w > 1) w = s.rfind('/', w - 2) + 1;  // drop the previous segment, keep its leading '/'
    } else if (seg == "." || (seg.empty() && (last || merge_slashes))) {
      // nothing: "." and merged empty segments vanish; a final one leaves the trailing '/'
    } else {
      if (disguises_dot_segment(seg)) return PathVerdict::disguised_dot_segment;
      if (w != i) std::memmove(s.data() + w, seg.data(), seg.size());
      w += seg.size();
      if (!last) s[w++] = '/';
    }
    i = j + 1;
  }
  s.resize(w);
  return PathVerdict::ok;
}

}  // namespace

std::string_view path_verdict_reason(PathVerdict v) noexcept {
  switch (v) {
    case PathVerdict::ok: return "";
    case PathVerdict::bad_escape: return "invalid percent-escape in path";
    case PathVerdict::encoded_slash: return "encoded slash in path";
    case PathVerdict::backslash: return "backslash in path";
    case PathVerdict::encoded_nul: return "encoded NUL in path";
    case PathVerdict::control_character: return "control character in path";
    case PathVerdict::disguised_dot_segment: return "dot-segment disguised in path";
    case PathVerdict::fragment: return "fragment in request target";
    case PathVerdict::not_absolute: return "invalid request target";
  }
  return "invalid path";
}

bool path_needs_work(std::string_view path) noexcept {
  char prev = 0;
  for (const char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if (kClasses[c] != kRaw) return true;
    if ((prev == '/' || prev == ';') && (c == '/' || c == '.')) return true;
    prev = static_cast<char>(c);
  }
  return false;
}

PathVerdict canonicalize_path(std::string_view path, const PathPolicy& policy, std::string& out) {
  out.clear();
  if (path.empty() || path.front() != '/') return PathVerdict::not_absolute;
  if (PathVerdict v = decode(path, policy, out); v != PathVerdict::ok) return v;
  return resolve_segments(out, policy.merge_slashes);
}

PathVerdict canonicalize_target(std::string& target, const PathPolicy& policy) {
  if (target.find('#') != std::string::npos) return PathVerdict::fragment;
  const std::size_t q = std::min(target.find('?'), target.size());
  const std::string_view path(target.data(), q);
  if (path.empty() || path.front() != '/') return PathVerdict::not_absolute;
  if (!path_needs_work(path)) return PathVerdict::ok;
  // The worker thread's scratch keeps its capacity: no allocation once it has grown.
  thread_local std::string scratch;
  if (PathVerdict v = canonicalize_path(path, policy, scratch); v != PathVerdict::ok) return v;
  target.replace(0, q, scratch);
  return PathVerdict::ok;
}

}  // namespace gatehouse::detail
