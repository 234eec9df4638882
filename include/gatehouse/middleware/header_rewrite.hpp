// HeaderRewrite: set, append or remove request and response headers.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "gatehouse/middleware.hpp"

namespace gatehouse {

struct HeaderEdits {
  std::vector<std::pair<std::string, std::string>> set{};  ///< replace (or add) the field
  std::vector<std::pair<std::string, std::string>> append{};  ///< add another field
  std::vector<std::string> remove{};                          ///< remove every field of the name
};

struct HeaderRewriteOptions {
  HeaderEdits request{};   ///< applied in on_request, before forwarding
  HeaderEdits response{};  ///< applied in on_response, before the client sees it
};

/// Edits are applied in the order remove, set, append.
class HeaderRewrite final : public Middleware {
 public:
  explicit HeaderRewrite(HeaderRewriteOptions options);
  Flow on_request(Exchange& ex) const override;
  Flow on_response(Exchange& ex) const override;

 private:
  HeaderRewriteOptions options_;
};

}  // namespace gatehouse
