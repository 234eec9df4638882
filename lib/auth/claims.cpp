#include "gatehouse/auth/claims.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

namespace gatehouse::auth {
namespace {

using json = nlohmann::json;

// RFC 6901: "~1" is '/', "~0" is '~'. Walks without building a json_pointer (no allocation for
// plain member names, no exceptions for bad pointers).
const json* walk_pointer(const json* node, std::string_view pointer) noexcept {
  if (pointer.empty()) return node;
  if (pointer.front() != '/') return nullptr;
  pointer.remove_prefix(1);
  std::string unescaped;
  while (node) {
    const std::size_t slash = pointer.find('/');
    std::string_view token = pointer.substr(0, slash);
    if (token.find('~') != std::string_view::npos) {
      unescaped.clear();
      for (std::size_t i = 0; i < token.size(); ++i) {
        if (token[i] != '~') {
          unescaped.push_back(token[i]);
          continue;
        }
        if (i + 1 == token.size() || (token[i + 1] != '0' && token[i + 1] != '1')) return nullptr;
        unescaped.push_back(token[i + 1] == '0' ? '~' : '/');
        ++i;
      }
      token = unescaped;
    }
    if (node->is_object()) {
      const auto it = node->find(token);
      node = it == node->end() ? nullptr : &*it;
    } else if (node->is_array()) {
      // Array indexes are decimal without leading zeros.
      if (token.empty() || token.size() > 9 || (token.size() > 1 && token[0] == '0')) return nullptr;
      std::size_t index = 0;
      for (const char c : token) {
        if (c < '0' || c > '9') return nullptr;
        index = index * 10 + static_cast<std::size_t>(c - '0');
      }
      node = index < node->size() ? &(*node)[index] : nullptr;
    } else {
      return nullptr;
    }
    if (slash == std::string_view::npos) return node;
    pointer.remove_prefix(slash + 1);
  }
  return nullptr;
}

const json& empty_object() {
  static const json empty = json::object();
  return empty;
}

void split_spaces(std::string_view s, std::vector<std::string>& out) {
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
}

}  // namespace

bool ClaimValue::is_string() const noexcept { return value_ && value_->is_string(); }
bool ClaimValue::is_number() const noexcept { return value_ && value_->is_number(); }
bool ClaimValue::is_array() const noexcept { return value_ && value_->is_array(); }
bool ClaimValue::is_object() const noexcept { return value_ && value_->is_object(); }

std::optional<std::string_view> ClaimValue::string() const noexcept {
  if (!is_string()) return std::nullopt;
  return std::string_view(value_->get_ref<const std::string&>());
}

std::optional<double> ClaimValue::number() const noexcept {
  if (!is_number()) return std::nullopt;
  const double d = value_->get<double>();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

std::optional<std::int64_t> ClaimValue::integer() const noexcept {
  if (!value_) return std::nullopt;
  if (value_->is_number_integer() && !value_->is_number_unsigned()) return value_->get<std::int64_t>();
  if (value_->is_number_unsigned()) {
    const auto u = value_->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (value_->is_number_float()) {
    const double d = value_->get<double>();
    // 2^63 is exactly representable; the range check keeps the conversion defined.
    if (!std::isfinite(d) || std::trunc(d) != d || d < -9223372036854775808.0 ||
        d >= 9223372036854775808.0) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

std::optional<bool> ClaimValue::boolean() const noexcept {
  if (!value_ || !value_->is_boolean()) return std::nullopt;
  return value_->get<bool>();
}

std::vector<std::string> ClaimValue::strings() const {
  std::vector<std::string> out;
  if (!value_) return out;
  if (value_->is_string()) {
    out.push_back(value_->get<std::string>());
  } else if (value_->is_array()) {
    out.reserve(value_->size());
    for (const auto& v : *value_) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

ClaimValue ClaimValue::get(std::string_view name) const noexcept {
  if (!is_object()) return {};
  const auto it = value_->find(name);
  return it == value_->end() ? ClaimValue{} : ClaimValue{&*it};
}

ClaimValue ClaimValue::at(std::string_view json_pointer) const noexcept {
  if (!value_) return {};
  try {
    return ClaimValue{walk_pointer(value_, json_pointer)};
  } catch (...) {  // only std::bad_alloc from unescaping
    return {};
  }
}

std::string ClaimValue::dump() const { return value_ ? value_->dump() : std::string{}; }

Claims::Claims(nlohmann::json payload) {
  if (!payload.is_object()) throw std::invalid_argument("claims must be a JSON object");
  payload_ = std::make_shared<const nlohmann::json>(std::move(payload));
}

const nlohmann::json& Claims::root() const noexcept { return payload_ ? *payload_ : empty_object(); }

ClaimValue Claims::get(std::string_view name) const noexcept {
  const json& r = root();
  const auto it = r.find(name);
  return it == r.end() ? ClaimValue{} : ClaimValue{&*it};
}

std::optional<std::string_view> Claims::string(std::string_view name) const noexcept {
  return get(name).string();
}
std::optional<double> Claims::number(std::string_view name) const noexcept { return get(name).number(); }
std::optional<std::int64_t> Claims::integer(std::string_view name) const noexcept {
  return get(name).integer();
}
std::optional<bool> Claims::boolean(std::string_view name) const noexcept { return get(name).boolean(); }
std::vector<std::string> Claims::strings(std::string_view name) const { return get(name).strings(); }

ClaimValue Claims::at(std::string_view json_pointer) const noexcept {
  return ClaimValue{&root()}.at(json_pointer);
}

std::vector<std::string> Claims::scopes() const {
  std::vector<std::string> out;
  if (const auto scope = string("scope")) {
    split_spaces(*scope, out);
    return out;
  }
  const ClaimValue scp = get("scp");
  if (const auto s = scp.string()) {
    split_spaces(*s, out);
  } else {
    out = scp.strings();
  }
  return out;
}

bool Claims::has_scope(std::string_view scope) const {
  for (const auto& s : scopes()) {
    if (s == scope) return true;
  }
  return false;
}

std::optional<Claims::time_point> Claims::time_claim(std::string_view name) const noexcept {
  const auto seconds = number(name);
  if (!seconds) return std::nullopt;
  // Clamp instead of overflowing the clock's 64-bit tick count.
  using namespace std::chrono;
  const double max_s = duration<double>(time_point::max().time_since_epoch()).count() - 1.0;
  const double min_s = duration<double>(time_point::min().time_since_epoch()).count() + 1.0;
  if (*seconds >= max_s) return time_point::max();
  if (*seconds <= min_s) return time_point::min();
  return time_point(duration_cast<time_point::duration>(duration<double>(*seconds)));
}

std::optional<Claims::time_point> Claims::expires_at() const noexcept { return time_claim("exp"); }
std::optional<Claims::time_point> Claims::not_before() const noexcept { return time_claim("nbf"); }
std::optional<Claims::time_point> Claims::issued_at() const noexcept { return time_claim("iat"); }

std::string Claims::dump() const { return root().dump(); }

}  // namespace gatehouse::auth
