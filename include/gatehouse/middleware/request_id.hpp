// RequestId: gives every request an id, forwards it to the upstream and returns it to the client.
#pragma once
#include <string>

#include "gatehouse/middleware.hpp"

namespace gatehouse {

/// An incoming id is kept only from a trusted proxy and only if it is 1-128 characters of
/// [A-Za-z0-9._:-]; otherwise a random 128-bit id (32 hex characters) is generated. The Gateway
/// installs one automatically at the front of the global chain.
class RequestId final : public Middleware {
 public:
  explicit RequestId(std::string header = "x-request-id");
  Flow on_request(Exchange& ex) const override;
  Flow on_response(Exchange& ex) const override;
  /// A fresh random id (32 lowercase hex characters).
  static std::string generate();

 private:
  std::string header_;
};

}  // namespace gatehouse
