// Result<T>: a value, or an error code plus a detail string meant for the log (never for clients).
#pragma once
#include <string>
#include <system_error>
#include <utility>
#include <variant>

#include "gatehouse/auth/token_error.hpp"

namespace gatehouse::auth {

template <class T>
class Result {
 public:
  struct Failure {
    std::error_code error;
    std::string detail;
  };

  /// A failure with TokenError::internal; exists because asio::co_spawn needs T().
  Result() : state_(Failure{make_error_code(TokenError::internal), {}}) {}
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  Result(std::error_code error, std::string detail = {})
      : state_(std::in_place_index<1>, Failure{error, std::move(detail)}) {}
  Result(TokenError error, std::string detail = {}) : Result(make_error_code(error), std::move(detail)) {}

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  /// The value; only when ok().
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  /// The error; empty (value 0) when ok().
  std::error_code error() const noexcept {
    const Failure* f = std::get_if<1>(&state_);
    return f ? f->error : std::error_code{};
  }
  /// What exactly went wrong, for the log; empty when ok(). Holds no key material and at most a
  /// short, escaped excerpt of what the client sent.
  const std::string& detail() const noexcept {
    static const std::string empty;
    const Failure* f = std::get_if<1>(&state_);
    return f ? f->detail : empty;
  }

 private:
  std::variant<T, Failure> state_;
};

}  // namespace gatehouse::auth
