// libFuzzer target, differential: what the gateway forwards re-parses to the same message.
//
// Input: one selector byte (PathPolicy bits, as canonical_path_fuzz), then one request. A request
// the front accepts (parser, head checks) is prepared as the upstream call prepares it
// (hop-by-hop and framing fields and Expect removed, Host added when absent), serialized with the gateway's own head
// writer and framing (request_framing: Content-Length, also 0 for a POST, PUT or PATCH without a
// body, or chunked with write_chunk_header), and parsed again by
// llhttp. The copy must parse as exactly one complete message, consume every byte, pass the same
// checks unchanged, and carry the same method, target, fields (values without surrounding
// whitespace), body and framing.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/path_policy_selector.hpp"
#include "http1/parser.hpp"
#include "http1/request_checks.hpp"
#include "http1/serializer.hpp"
#include "proxy/forwarding.hpp"
#include "util/text.hpp"

namespace {

using gatehouse::PathPolicy;
using gatehouse::Request;
namespace d = gatehouse::detail;

[[noreturn]] void invariant_failed(const char* what, std::string_view detail) {
  std::fprintf(stderr, "forward_fuzz: %s\n%.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}


struct Parsed {
  bool ok = false;
  std::size_t consumed = 0;
  bool chunked = false;
  long long length = -1;
  std::string body;
};

Parsed parse(std::string_view bytes, Request& req, const PathPolicy& policy) {
  Parsed p;
  d::Http1Parser parser(d::Http1Parser::Kind::request);
  parser.start_request(&req, {.max_body_bytes = 1 << 20});
  const auto r = parser.feed(bytes.data(), bytes.size());
  for (auto piece : parser.body()) p.body.append(piece);
  if (r.error || !r.message_complete) return p;
  if (d::check_request_head(req, policy).status) return p;
  p.ok = true;
  p.consumed = r.consumed;
  p.chunked = parser.chunked();
  p.length = parser.content_length();
  return p;
}

std::string fields(const Request& req) {
  std::string s;
  for (auto f : req.headers()) s.append(f.name).append(": ").append(d::trim_ows(f.value)).append("\n");
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const unsigned sel = data[0];
  const PathPolicy policy = gatehouse::fuzz::path_policy_from(sel);
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  Request req;
  const Parsed first = parse(input, req, policy);
  if (!first.ok) return 0;
  // As UpstreamOrigin::serve prepares it.
  d::strip_hop_by_hop(req.headers());
  req.headers().remove("expect");
  // An HTTP/1.0 request may come without Host; the call adds the endpoint's (upstream_call.cpp).
  if (!req.headers().contains("host")) req.headers().add("host", "svc.internal:8080");
  // The session hands over a body when the request is chunked or has a length above zero.
  const bool has_body = first.chunked || first.length > 0;
  const d::Framing framing = d::request_framing(req.method(), has_body, first.chunked ? -1 : first.length);
  std::string wire;
  d::write_request_head(wire, req, framing, first.body.size());
  if (framing == d::Framing::chunked) {
    if (!first.body.empty()) {
      d::write_chunk_header(wire, first.body.size());
      wire.append(first.body).append("\r\n");
    }
    wire.append("0\r\n\r\n");
  } else {
    wire.append(first.body);
  }

  Request copy;
  const Parsed second = parse(wire, copy, policy);
  if (!second.ok) invariant_failed("the forwarded request does not parse", wire);
  if (second.consumed != wire.size()) invariant_failed("bytes left after the forwarded request", wire);
  if (copy.method() != req.method()) invariant_failed("method changed", wire);
  if (copy.target() != req.target()) invariant_failed("target changed", wire);
  if (fields(copy) != fields(req) + (framing == d::Framing::length ? "Content-Length: " + std::to_string(first.body.size()) + "\n"
                                     : framing == d::Framing::chunked ? "Transfer-Encoding: chunked\n"
                                                                      : ""))
    invariant_failed("fields changed", fields(req) + "---\n" + fields(copy));
  if (second.body != first.body) invariant_failed("body changed", wire);
  if (second.chunked != first.chunked) invariant_failed("framing changed", wire);
  return 0;
}
