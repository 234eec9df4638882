// libFuzzer target: the HTTP/1 request front as the session runs it: the llhttp wrapper with its
// own checks (lib/http1/parser.cpp), then the head checks before routing (request_checks.cpp:
// target form, Host, canonical path), over pipelined messages.
//
// Input: two selector bytes, then the bytes a client sends. Byte 0 picks where the bytes are cut
// into two non-empty reads; byte 1's bits pick the PathPolicy (as canonical_path_fuzz). The bytes
// are parsed once in one read and once in two, each read in its own buffer: both must accept the
// same messages and refuse at the same one (split reads are how obs-fold and limit checks go
// wrong). Every request that passes has an origin-form, canonical target without '#', and at most
// one valid Host.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/canonical_path.hpp"
#include "fuzz/path_policy_selector.hpp"
#include "http1/authority.hpp"
#include "http1/parser.hpp"
#include "http1/request_checks.hpp"

namespace {

using gatehouse::PathPolicy;
using gatehouse::Request;
namespace d = gatehouse::detail;

[[noreturn]] void invariant_failed(const char* what, std::string_view detail) {
  std::fprintf(stderr, "http1_request_fuzz: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}


void check_accepted(const Request& req, const PathPolicy& policy) {
  const std::string_view t = req.target();
  if (t.empty() || t.front() != '/' || t.find('#') != std::string_view::npos) invariant_failed("target", t);
  std::string again;
  const std::string_view path = req.path();
  if (d::canonicalize_path(path, policy, again) != d::PathVerdict::ok || again != path)
    invariant_failed("path not canonical", path);
  if (req.headers().count("host") > 1) invariant_failed("several Host fields", t);
  if (auto h = req.headers().get("host"); h && !d::is_valid_authority(*h)) invariant_failed("invalid Host", *h);
}

// One line per message: its outcome and what a route would see.
std::vector<std::string> run(const std::vector<std::string>& reads, const PathPolicy& policy) {
  std::vector<std::string> out;
  d::Http1Parser parser(d::Http1Parser::Kind::request);
  const d::ParseLimits limits{.max_uri_bytes = 512, .max_header_bytes = 1024, .max_header_count = 16,
                              .max_body_bytes = 4096};
  std::size_t read = 0, offset = 0;
  for (int message = 0; message < 4 && read < reads.size(); ++message) {
    Request req;
    std::string body;
    parser.start_request(&req, limits);
    bool done = false;
    while (!done && read < reads.size()) {
      const std::string& r = reads[read];
      const auto res = parser.feed(r.data() + offset, r.size() - offset);
      offset += res.consumed;
      for (auto piece : parser.body()) body.append(piece);
      parser.clear_body();
      if (res.error) {
        out.push_back("error " + std::to_string(parser.error_status()));
        return out;
      }
      if (res.head_complete) {
        const d::HeadVerdict v = d::check_request_head(req, policy);
        if (v.status) {
          out.push_back("refused " + std::to_string(v.status) + " " + std::string(v.reason));
          return out;
        }
        check_accepted(req, policy);
      }
      if (res.message_complete) done = true;
      if (offset == r.size()) {
        ++read;
        offset = 0;
      }
    }
    if (!done) {
      out.push_back("incomplete");
      return out;
    }
    std::string line = std::string(req.method()) + " " + std::string(req.target()) + " 1." +
                       std::to_string(req.version_minor());
    for (auto f : req.headers()) line.append("|").append(f.name).append(":").append(f.value);
    line.append("|body:").append(body);
    out.push_back(std::move(line));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const unsigned sel = data[1];
  const PathPolicy policy = gatehouse::fuzz::path_policy_from(sel);
  const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);
  if (bytes.size() < 2) return 0;  // no message fits in one byte, and it cannot be split
  // Both reads hold bytes, as a socket's do (a read of zero bytes is the end of the stream). An
  // empty second read would be fed as the start of one more message that never comes, so a run
  // whose bytes end at a message boundary would end "incomplete" in two reads and not in one.
  const std::size_t cut = 1 + data[0] % (bytes.size() - 1);
  auto whole = run({std::string(bytes)}, policy);
  auto split = run({std::string(bytes.substr(0, cut)), std::string(bytes.substr(cut))}, policy);
  // Both runs see every byte, so they must accept the same messages, identically, and refuse at
  // the same one. Which refusal wins may differ: a bad body byte read together with the head is
  // found before the head checks run, and after them when it comes in a later read.
  for (auto* outcome : {&whole, &split})
    if (!outcome->empty() && (outcome->back().starts_with("error") || outcome->back().starts_with("refused")))
      outcome->back() = "refused";
  if (whole != split) {
    std::string a, b;
    for (const auto& l : whole) a += l + "\n";
    for (const auto& l : split) b += l + "\n";
    invariant_failed("one read and two reads disagree", "cut " + std::to_string(cut) + "\nwhole:\n" + a + "split:\n" + b);
  }
  return 0;
}
