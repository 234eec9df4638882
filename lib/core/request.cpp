#include "gatehouse/request.hpp"

namespace gatehouse {

std::string_view Request::path() const noexcept {
  std::string_view t = target_;
  return t.substr(0, t.find('?'));
}

std::string_view Request::query() const noexcept {
  std::string_view t = target_;
  const auto q = t.find('?');
  return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
}

void Request::set_path(std::string_view path) {
  const auto q = target_.find('?');
  std::string next(path);
  if (q != std::string::npos) next.append(target_, q, std::string::npos);
  target_ = std::move(next);
}

std::string_view Request::host() const noexcept {
  auto h = headers_.get("host");
  if (!h) return {};
  std::string_view v = *h;
  if (!v.empty() && v.front() == '[') {  // [v6]:port
    const auto close = v.find(']');
    return close == std::string_view::npos ? v : v.substr(0, close + 1);
  }
  return v.substr(0, v.find(':'));
}

}  // namespace gatehouse
