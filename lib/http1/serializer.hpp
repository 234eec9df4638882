// Writes message heads in normal form: our own start line, one field per line, framing set by us.
#pragma once
#include <cstdint>
#include <string>

#include "gatehouse/request.hpp"
#include "gatehouse/response.hpp"

namespace gatehouse::detail {

enum class Framing : unsigned char {
  none,     ///< no body
  length,   ///< Content-Length: n
  chunked,  ///< Transfer-Encoding: chunked
  close,    ///< body ends when the connection closes (responses to HTTP/1.0 clients only)
};

/// "METHOD target HTTP/1.1" + fields + framing. The fields must already be free of hop-by-hop and
/// framing fields (see forwarding.hpp).
void write_request_head(std::string& out, const Request& req, Framing framing, std::uint64_t length);

/// "HTTP/1.x status reason" + fields + framing + "Connection: close" when `close`.
void write_response_head(std::string& out, const Response& resp, int client_minor, Framing framing,
                         std::uint64_t length, bool close);

/// "<hex size>\r\n" for one chunk.
void write_chunk_header(std::string& out, std::uint64_t size);

}  // namespace gatehouse::detail
