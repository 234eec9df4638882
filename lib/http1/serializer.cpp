#include "http1/serializer.hpp"

#include "util/text.hpp"

#include <charconv>
#include <cstring>

namespace gatehouse::detail {
namespace {

void append_number(std::string& out, std::uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), n);
  out.append(buf, end);
}

// Whether a value needs trimming: the parser's values and the gateway's own rarely do.
inline bool has_edge_ows(std::string_view v) noexcept {
  return !v.empty() && (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' || v.back() == '\t');
}

void append_fields(std::string& out, const Headers& headers) {
  // Sized once, then filled: one capacity check for the whole block instead of four per field.
  std::size_t need = 0;
  bool trim = false;
  for (auto f : headers) {
    need += f.name.size() + f.value.size() + 4;
    trim = trim || has_edge_ows(f.value);
  }
  std::size_t at = out.size();
  out.resize(at + need);  // an upper bound when a value is trimmed: cut back below
  char* p = out.data();
  for (auto f : headers) {
    const std::string_view v = trim ? trim_ows(f.value) : f.value;
    std::memcpy(p + at, f.name.data(), f.name.size());
    at += f.name.size();
    p[at++] = ':';
    p[at++] = ' ';
    std::memcpy(p + at, v.data(), v.size());
    at += v.size();
    p[at++] = '\r';
    p[at++] = '\n';
  }
  out.resize(at);
}

void append_framing(std::string& out, Framing framing, std::uint64_t length) {
  if (framing == Framing::length) {
    out.append("Content-Length: ");
    append_number(out, length);
    out.append("\r\n");
  } else if (framing == Framing::chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  }
}

}  // namespace

void write_request_head(std::string& out, const Request& req, Framing framing, std::uint64_t length) {
  out.append(req.method());
  out.push_back(' ');
  out.append(req.target());
  out.append(" HTTP/1.1\r\n");
  append_fields(out, req.headers());
  append_framing(out, framing, length);
  out.append("\r\n");
}

void write_response_head(std::string& out, const Response& resp, int client_minor, Framing framing,
                         std::uint64_t length, bool close) {
  out.append(client_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ");
  append_number(out, resp.status());
  out.push_back(' ');
  out.append(reason_phrase(resp.status()));
  out.append("\r\n");
  append_fields(out, resp.headers());
  append_framing(out, framing, length);
  if (close) out.append("Connection: close\r\n");
  else if (client_minor == 0) out.append("Connection: keep-alive\r\n");
  out.append("\r\n");
}

void write_chunk_header(std::string& out, std::uint64_t size) {
  char buf[20];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), size, 16);
  out.append(buf, end);
  out.append("\r\n");
}

}  // namespace gatehouse::detail
