#include "observe/trace_context.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

#include "core/exchange_access.hpp"
#include "util/fast_random.hpp"
#include "util/text.hpp"

namespace gatehouse {

std::string TraceContext::traceparent() const {
  if (!active_) return {};
  char out[55];
  detail::TraceAccess::write_traceparent(*this, out);
  return std::string(out, sizeof out);
}

namespace detail {
namespace {

constexpr bool is_lower_hex(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// `n` lowercase hex digits, not all zero when `nonzero`.
bool lower_hex(std::string_view s, std::size_t at, std::size_t n, bool nonzero) noexcept {
  bool any = false;
  for (std::size_t i = at; i < at + n; ++i) {
    if (!is_lower_hex(s[i])) return false;
    any = any || s[i] != '0';
  }
  return any || !nonzero;
}

std::uint8_t hex_byte(char hi, char lo) noexcept {
  return static_cast<std::uint8_t>(hex_value(hi) * 16 + hex_value(lo));
}

// tracestate keys (lcalpha, DIGIT, "_", "-", "*", "/" after the first character).
constexpr bool is_lcalpha(char c) noexcept { return c >= 'a' && c <= 'z'; }
constexpr bool is_key_char(char c) noexcept {
  return is_lcalpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' || c == '/';
}

bool key_part(std::string_view s, std::size_t max, bool digit_first) noexcept {
  if (s.empty() || s.size() > max) return false;
  if (!is_lcalpha(s[0]) && !(digit_first && s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s.substr(1))
    if (!is_key_char(c)) return false;
  return true;
}

// simple-key = lcalpha 0*255(keychar); multi-tenant-key = tenant-id "@" system-id, with
// tenant-id = (lcalpha / DIGIT) 0*240(keychar) and system-id = lcalpha 0*13(keychar).
bool valid_key(std::string_view key) noexcept {
  const auto at = key.find('@');
  if (at == std::string_view::npos) return key_part(key, 256, false);
  return key_part(key.substr(0, at), 241, true) && key_part(key.substr(at + 1), 14, false);
}

// value = 0*255(chr) nblk-chr, chr = %x20 / nblk-chr, nblk-chr = %x21-2B / %x2D-3C / %x3E-7E.
bool valid_value(std::string_view v) noexcept {
  if (v.empty() || v.size() > 256 || v.back() == ' ') return false;
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == ',' || c == '=') return false;
  }
  return true;
}

struct Members {
  std::array<std::string_view, kMaxTracestateMembers> item;
  std::array<std::size_t, kMaxTracestateMembers> key_size;
  std::size_t count = 0;
};

// Adds the members of one field value; false when the list is invalid.
bool add_members(std::string_view list, Members& m) noexcept {
  while (true) {
    const auto comma = list.find(',');
    const std::string_view member = trim_ows(list.substr(0, comma));
    if (!member.empty()) {
      const auto eq = member.find('=');
      if (eq == std::string_view::npos || !valid_key(member.substr(0, eq)) || !valid_value(member.substr(eq + 1)))
        return false;
      if (m.count == kMaxTracestateMembers) return false;
      const std::string_view key = member.substr(0, eq);
      for (std::size_t i = 0; i < m.count; ++i)
        if (m.item[i].substr(0, m.key_size[i]) == key) return false;  // keys are unique
      m.item[m.count] = member;
      m.key_size[m.count] = eq;
      ++m.count;
    }
    if (comma == std::string_view::npos) return true;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace

std::optional<TraceParent> parse_traceparent(std::string_view value) noexcept {
  const std::string_view v = trim_ows(value);
  if (v.size() < 55) return std::nullopt;
  if (!lower_hex(v, 0, 2, false) || v[2] != '-' || v[35] != '-' || v[52] != '-') return std::nullopt;
  TraceParent tp;
  tp.version = hex_byte(v[0], v[1]);
  if (tp.version == 0xff) return std::nullopt;
  // A later version may append fields after a dash; version 00 has exactly these four.
  if (v.size() > 55 && (tp.version == 0 || v[55] != '-')) return std::nullopt;
  if (!lower_hex(v, 3, 32, true) || !lower_hex(v, 36, 16, true) || !lower_hex(v, 53, 2, false)) return std::nullopt;
  v.copy(tp.trace_id, 32, 3);
  v.copy(tp.parent_id, 16, 36);
  tp.flags = hex_byte(v[53], v[54]);
  return tp;
}

bool normalize_tracestate(const Headers& headers, std::string& out) {
  out.clear();
  Members m;
  // Several tracestate fields form one list (RFC 9110 5.3), in order.
  for (const auto& field : headers)
    if (iequals(field.name, "tracestate") && !add_members(field.value, m)) return false;
  std::size_t bytes = 0, kept = m.count;
  for (std::size_t i = 0; i < m.count; ++i) bytes += m.item[i].size();
  // The joined list: members and the commas between them.
  auto too_long = [&] { return kept > 0 && bytes + kept - 1 > kMaxTracestateBytes; };
  std::array<bool, kMaxTracestateMembers> keep;
  keep.fill(true);
  auto drop = [&](std::size_t i) {
    keep[i] = false;
    bytes -= m.item[i].size();
    --kept;
  };
  // Too long: members over 128 characters go first, then members from the end.
  for (std::size_t i = 0; i < m.count && too_long(); ++i)
    if (m.item[i].size() > 128) drop(i);
  for (std::size_t i = m.count; i-- > 0 && too_long();)
    if (keep[i]) drop(i);
  for (std::size_t i = 0; i < m.count; ++i) {
    if (!keep[i]) continue;
    if (!out.empty()) out += ',';
    out += m.item[i];
  }
  return true;
}

void TraceAccess::start(TraceContext& tc, bool sampled) noexcept {
  FastRandom& gen = FastRandom::local();
  std::uint64_t hi = 0, lo = 0;
  while ((hi | lo) == 0) hi = gen.next(), lo = gen.next();  // an all-zero id is invalid
  write_hex64(tc.trace_id_, hi);
  write_hex64(tc.trace_id_ + 16, lo);
  std::uint64_t span = 0;
  while (span == 0) span = gen.next();
  write_hex64(tc.span_id_, span);
  tc.flags_ = sampled ? 1 : 0;
  tc.active_ = true;
  tc.continued_ = false;
}

void TraceAccess::continue_from(TraceContext& tc, const TraceParent& parent) noexcept {
  FastRandom& gen = FastRandom::local();
  std::uint64_t span = 0;
  while (span == 0) span = gen.next();
  write_hex64(tc.span_id_, span);
  std::copy_n(parent.trace_id, 32, tc.trace_id_);
  std::copy_n(parent.parent_id, 16, tc.parent_id_);
  // Level 1 defines the sampled bit only; other bits are not passed on.
  tc.flags_ = parent.flags & 1;
  tc.active_ = true;
  tc.continued_ = true;
}

void TraceAccess::write_traceparent(const TraceContext& tc, char (&out)[55]) noexcept {
  out[0] = out[1] = '0';
  out[2] = out[35] = out[52] = '-';
  std::copy_n(tc.trace_id_, 32, out + 3);
  std::copy_n(tc.span_id_, 16, out + 36);
  out[53] = '0';
  out[54] = static_cast<char>('0' + (tc.flags_ & 1));
}

TracePolicy::TracePolicy(const TraceContextOptions& options, const CidrSet& trusted_proxies)
    : continue_from_(options.continue_from), sample_new_(options.sample_new), enabled_(options.enabled) {
  if (options.trusted_sources.empty()) {
    sources_ = trusted_proxies;
    return;
  }
  for (const auto& block : options.trusted_sources)
    if (!sources_.add(block)) throw std::invalid_argument("invalid trace context source CIDR \"" + block + "\"");
}

void TracePolicy::apply(Exchange& ex) const {
  Headers& headers = ex.request().headers();
  TraceContext& tc = ExchangeAccess::trace(ex);
  const auto incoming = headers.get("traceparent");
  std::optional<TraceParent> parent;
  if (incoming && continue_from_ != TraceContinue::never &&
      (continue_from_ == TraceContinue::all || sources_.contains(ex.peer().address())) &&
      headers.count("traceparent") == 1)
    parent = parse_traceparent(*incoming);
  if (parent) TraceAccess::continue_from(tc, *parent);
  else TraceAccess::start(tc, sample_new_);

  char value[55];
  TraceAccess::write_traceparent(tc, value);
  headers.set("traceparent", std::string_view(value, sizeof value));
  if (!headers.contains("tracestate")) return;
  // The caller's tracestate belongs to its traceparent: forwarded only with it, and only valid.
  thread_local std::string state;
  if (parent && normalize_tracestate(headers, state) && !state.empty()) headers.set("tracestate", state);
  else headers.remove("tracestate");
}

void TracePolicy::start_new(Exchange& ex) const noexcept {
  if (enabled_) TraceAccess::start(ExchangeAccess::trace(ex), sample_new_);
}

}  // namespace detail
}  // namespace gatehouse
