#include "http1/request_checks.hpp"

#include <array>

#include "core/canonical_path.hpp"
#include "core/exchange_access.hpp"
#include "http1/authority.hpp"
#include "util/text.hpp"

namespace gatehouse::detail {
namespace {

// The length of "http://" or "https://" at the start of `t` (any case), else 0.
std::size_t scheme_prefix(std::string_view t) noexcept {
  if (t.size() >= 7 && iequals(t.substr(0, 7), "http://")) return 7;
  if (t.size() >= 8 && iequals(t.substr(0, 8), "https://")) return 8;
  return 0;
}

}  // namespace

HeadVerdict check_request_head(Request& req, const PathPolicy& policy) {
  std::string& target = RequestAccess::target(req);
  Headers& headers = req.headers();
  if (req.method() == "CONNECT") return {405, "CONNECT is not supported"};
  if (target == "*") {
    if (req.method() == "OPTIONS") return {501, "asterisk-form is not supported"};
    return {400, "asterisk-form is only for OPTIONS"};
  }
  if (headers.count("host") > 1) return {400, "duplicate Host header"};
  if (const std::size_t skip = scheme_prefix(target)) {
    const std::string_view rest = std::string_view(target).substr(skip);
    const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
    if (authority.empty()) return {400, "absolute target without authority"};
    if (!is_valid_authority(authority)) return {400, "invalid authority in absolute target"};
    // The target's authority wins over any Host field (RFC 9112 3.2.2).
    headers.set("host", authority);
    target.erase(0, skip + authority.size());
    if (target.empty() || target.front() != '/') target.insert(target.begin(), '/');
  } else {
    if (target.empty() || target.front() != '/') return {400, "invalid request target"};
    const auto host = headers.get("host");
    if (!host) {
      if (req.version_minor() == 1) return {400, "missing Host header"};
    } else {
      // The parser keeps a value's trailing whitespace; the router and the upstream get none.
      const std::string_view value = trim_ows(*host);
      if (!is_valid_authority(value)) return {400, "invalid Host header"};
      if (value.size() != host->size()) {
        std::array<char, 272> copy{};  // a valid authority is shorter: 253 bytes of name, a port
        value.copy(copy.data(), value.size());
        headers.set("host", std::string_view(copy.data(), value.size()));
      }
    }
  }
  if (const PathVerdict v = canonicalize_target(target, policy); v != PathVerdict::ok)
    return {400, path_verdict_reason(v)};
  return {};
}

}  // namespace gatehouse::detail
