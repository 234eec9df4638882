#include "net/endpoint_text.hpp"

namespace gatehouse::detail {

std::string endpoint_text(const asio::ip::tcp::endpoint& ep) {
  // Appended piece by piece: g++ 12 at -O3 warns (-Wrestrict, falsely) on the operator+ chain.
  const auto a = ep.address();
  std::string out;
  if (a.is_v6()) out += '[';
  out += a.to_string();
  if (a.is_v6()) out += ']';
  out += ':';
  out += std::to_string(ep.port());
  return out;
}

}  // namespace gatehouse::detail
