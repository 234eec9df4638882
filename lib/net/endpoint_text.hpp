// How an endpoint is written in labels and logs: "127.0.0.1:8080", "[::1]:8080".
#pragma once
#include <string>

#include <asio/ip/tcp.hpp>

namespace gatehouse::detail {

std::string endpoint_text(const asio::ip::tcp::endpoint& ep);

}  // namespace gatehouse::detail
