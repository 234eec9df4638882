// Claims: the verified payload of a token, with typed read-only access.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace gatehouse::auth {

/// A read-only view of one value inside a Claims object. It stays valid as long as the Claims (or
/// any copy of it) lives. Every accessor returns empty when the value is missing or of another type.
class ClaimValue {
 public:
  ClaimValue() noexcept = default;

  bool exists() const noexcept { return value_ != nullptr; }
  explicit operator bool() const noexcept { return exists(); }
  bool is_string() const noexcept;
  bool is_number() const noexcept;
  bool is_array() const noexcept;
  bool is_object() const noexcept;

  std::optional<std::string_view> string() const noexcept;
  std::optional<double> number() const noexcept;
  /// Integers, and floating-point values that hold an integer in the int64 range.
  std::optional<std::int64_t> integer() const noexcept;
  std::optional<bool> boolean() const noexcept;
  /// A string gives one element; an array gives its string elements (others are skipped).
  std::vector<std::string> strings() const;
  /// Member of an object value.
  ClaimValue get(std::string_view name) const noexcept;
  /// Nested value by JSON pointer (RFC 6901), relative to this value.
  ClaimValue at(std::string_view json_pointer) const noexcept;
  /// The value serialized as compact JSON ("" when missing).
  std::string dump() const;

 private:
  friend class Claims;
  explicit ClaimValue(const nlohmann::json* value) noexcept : value_(value) {}
  const nlohmann::json* value_ = nullptr;
};

/// Immutable and cheap to copy: copies share one parsed payload, so the verified-token cache hands
/// out the same claims to every request that presents the same token.
class Claims {
 public:
  using time_point = std::chrono::system_clock::time_point;

  /// An empty claim set.
  Claims() noexcept = default;
  /// Takes a JSON object; throws std::invalid_argument for anything else.
  explicit Claims(nlohmann::json payload);

  bool has(std::string_view name) const noexcept { return get(name).exists(); }
  ClaimValue get(std::string_view name) const noexcept;
  std::optional<std::string_view> string(std::string_view name) const noexcept;
  std::optional<double> number(std::string_view name) const noexcept;
  std::optional<std::int64_t> integer(std::string_view name) const noexcept;
  std::optional<bool> boolean(std::string_view name) const noexcept;
  /// A string claim as one element, or the string elements of an array claim.
  std::vector<std::string> strings(std::string_view name) const;
  /// Nested access by JSON pointer, e.g. at("/realm_access/roles").strings().
  ClaimValue at(std::string_view json_pointer) const noexcept;

  std::optional<std::string_view> subject() const noexcept { return string("sub"); }
  std::optional<std::string_view> issuer() const noexcept { return string("iss"); }
  std::vector<std::string> audiences() const { return strings("aud"); }
  /// OAuth scopes: the space-separated "scope" string, else "scp" (array or space-separated string).
  std::vector<std::string> scopes() const;
  bool has_scope(std::string_view scope) const;
  /// exp, nbf and iat as time points (clamped to the clock's range), empty when absent.
  std::optional<time_point> expires_at() const noexcept;
  std::optional<time_point> not_before() const noexcept;
  std::optional<time_point> issued_at() const noexcept;

  /// The whole claim set as compact JSON.
  std::string dump() const;
  /// True when both share one payload (a cache hit returns the claims it stored).
  bool same_payload(const Claims& other) const noexcept { return payload_ == other.payload_; }
  /// Identifies the shared payload (null for Claims()): equal exactly when same_payload() is true.
  /// A cache may key on it only while it holds a copy of the claims, which keeps the address from
  /// being reused by another payload.
  const void* payload_id() const noexcept { return payload_.get(); }

 private:
  const nlohmann::json& root() const noexcept;
  std::optional<time_point> time_claim(std::string_view name) const noexcept;

  std::shared_ptr<const nlohmann::json> payload_;
};

}  // namespace gatehouse::auth
