#include "proxy/forwarding.hpp"

#include "util/text.hpp"

#include <array>
#include <string>

namespace gatehouse::detail {
namespace {

// Hop-by-hop fields (plus framing), tested with one comparison at most: by length, then by name.
// `name` (a field name: a token) equals the lower-case `literal` of the same length, in any case.
// OR-ing 0x20 folds letters; for the bytes of these literals (letters and '-') no other token
// byte folds onto them, so this is exact.
bool is_literal(std::string_view name, std::string_view literal) noexcept {
  for (std::size_t i = 0; i < literal.size(); ++i)
    if ((static_cast<unsigned char>(name[i]) | 0x20) != static_cast<unsigned char>(literal[i])) return false;
  return true;
}

bool is_hop_by_hop(std::string_view n) noexcept {
  switch (n.size()) {
    case 2: return is_literal(n, "te");
    case 7: return is_literal(n, "trailer") || is_literal(n, "upgrade");
    case 10: return is_literal(n, "connection") || is_literal(n, "keep-alive");
    case 14: return is_literal(n, "content-length");
    case 16: return is_literal(n, "proxy-connection");
    case 17: return is_literal(n, "transfer-encoding");
    case 18: return is_literal(n, "proxy-authenticate");
    case 19: return is_literal(n, "proxy-authorization");
    default: return false;
  }
}

// Calls fn(token) for each comma-separated element of the list `v`.
template <class Fn>
void for_each_element(std::string_view v, Fn fn) {
  while (!v.empty()) {
    const auto comma = v.find(',');
    std::string_view item = trim_ows(v.substr(0, comma));
    if (!item.empty()) fn(item);
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
}

// Calls fn(token) for each comma-separated element of every field named `name`.
template <class Fn>
void for_each_list_element(const Headers& h, std::string_view name, Fn fn) {
  for (auto f : h)
    if (iequals(f.name, name)) for_each_element(f.value, fn);
}

// X-Forwarded-For entries may carry ports or brackets: "1.2.3.4", "[::1]", "[::1]:80", "1.2.3.4:80".
bool parse_forwarded_address(std::string_view s, asio::ip::address& out) {
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos) return false;
    s = s.substr(1, close - 1);
  } else if (s.find(':') != s.rfind(':')) {
    // several colons: a bare IPv6 address
  } else if (auto colon = s.find(':'); colon != std::string_view::npos) {
    s = s.substr(0, colon);
  }
  asio::error_code ec;
  out = asio::ip::make_address(std::string(s), ec);
  return !ec;
}

// The forwarding fields the gateway writes (X-Forwarded-*, X-Real-IP, Forwarded).
bool is_forwarding_field(std::string_view n) noexcept {
  switch (n.size()) {
    case 9: return is_literal(n, "forwarded") || is_literal(n, "x-real-ip");
    case 15: return is_literal(n, "x-forwarded-for");
    case 16: return is_literal(n, "x-forwarded-host");
    case 17: return is_literal(n, "x-forwarded-proto");
    default: return false;
  }
}

// Appends one Forwarded element (RFC 7239 section 4): for=<peer>;host="<host>";proto=<proto>.
// An IPv6 node is a quoted "[...]"; the host is a quoted-string, left out when empty.
void append_forwarded_element(std::string& out, std::string_view peer, bool v6, std::string_view host,
                              std::string_view proto) {
  out.reserve(out.size() + 32 + peer.size() + 2 * host.size());
  out.append(v6 ? "for=\"[" : "for=");
  out.append(peer);
  if (v6) out.append("]\"");
  if (!host.empty()) {
    out.append(";host=\"");
    if (host.find_first_of("\"\\") == std::string_view::npos) {
      out.append(host);
    } else {
      for (char c : host) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
      }
    }
    out.push_back('"');
  }
  out.append(";proto=");
  out.append(proto);
}

// A peer that is not a trusted proxy (the usual case, on every request): whatever forwarding
// fields it sent are dropped and ours are written, in one pass over the fields and without a
// scratch string per value.
void set_forwarded_headers_untrusted(Headers& h, std::string_view peer, bool v6, std::string_view proto) {
  thread_local std::string host, forwarded;
  host.clear();
  bool seen_host = false, any = false;
  for (auto f : h) {
    if (!seen_host && f.name.size() == 4 && is_literal(f.name, "host")) {
      host.assign(f.value);  // copied: adding fields below may move the header block
      seen_host = true;
    }
    any = any || is_forwarding_field(f.name);
  }
  if (any) h.remove_if([](const Headers::Field& f) { return is_forwarding_field(f.name); });
  h.add("x-forwarded-for", peer);
  h.add("x-real-ip", peer);
  h.add("x-forwarded-proto", proto);
  if (!host.empty()) h.add("x-forwarded-host", host);
  forwarded.clear();
  append_forwarded_element(forwarded, peer, v6, host, proto);
  h.add("forwarded", forwarded);
}

}  // namespace

Framing request_framing(std::string_view method, bool has_body, std::int64_t length) noexcept {
  if (has_body) return length < 0 ? Framing::chunked : Framing::length;
  const bool content_has_meaning = method == "POST" || method == "PUT" || method == "PATCH";
  return content_has_meaning ? Framing::length : Framing::none;
}

void strip_hop_by_hop(Headers& headers) {
  // One pass finds the hop-by-hop fields and reads the Connection options (a length switch per
  // field). The usual options (keep-alive, upgrade) name fields that go anyway, so usually
  // nothing else is looked for ("close" is, at the cost of a length check in remove()). The
  // option names view the header block, which removing fields leaves in place.
  bool any = false, overflow = false;
  std::array<std::string_view, 16> named;
  std::size_t n = 0;
  for (auto f : headers) {
    if (!is_hop_by_hop(f.name)) continue;
    any = true;
    if (f.name.size() != 10 || !is_literal(f.name, "connection")) continue;
    for_each_element(f.value, [&](std::string_view token) {
      if (is_hop_by_hop(token)) return;
      if (n < named.size()) named[n++] = token;
      else overflow = true;
    });
  }
  if (!any) return;
  for (std::size_t i = 0; i < n; ++i) headers.remove(named[i]);
  if (overflow) {
    // More than 16 names is unusual; handle it the slow way rather than keep any.
    std::vector<std::string_view> rest;
    for_each_list_element(headers, "connection", [&](std::string_view t) { rest.push_back(t); });
    for (std::string_view r : rest) headers.remove(r);
  }
  headers.remove_if([](const Headers::Field& f) { return is_hop_by_hop(f.name); });
}

asio::ip::address client_address_from(const Headers& headers, const asio::ip::address& peer,
                                      const CidrSet& trusted) {
  if (trusted.empty() || !trusted.contains(peer)) return peer;
  // Walk the chain from the right: each hop we trust vouches for the one before it.
  std::vector<std::string_view> hops;
  for_each_list_element(headers, "x-forwarded-for", [&](std::string_view t) { hops.push_back(t); });
  asio::ip::address current = peer;
  for (std::size_t i = hops.size(); i-- > 0;) {
    asio::ip::address a;
    if (!parse_forwarded_address(hops[i], a)) break;
    current = a;
    if (!trusted.contains(a)) break;
  }
  return current;
}

std::string address_text(const asio::ip::address& a) { return a.to_string(); }

void set_forwarded_headers(Exchange& ex, std::string_view peer) {
  Headers& h = ex.request().headers();
  const std::string_view proto = ex.secure() ? "https" : "http";
  const bool v6 = ex.peer().address().is_v6();
  if (!ex.peer_trusted()) return set_forwarded_headers_untrusted(h, peer, v6, proto);
  // A trusted proxy: its chains are extended, the fields it set are kept.
  // Scratch strings of this worker thread: values are built here, then copied into the fields
  // (a view into `h` would dangle once `h` grows), without an allocation per request.
  thread_local std::string host, value;
  host.assign(h.get("host").value_or(""));

  // X-Forwarded-For: the peer appended to the proxy's chain.
  value.clear();
  for_each_list_element(h, "x-forwarded-for", [&](std::string_view t) {
    if (!value.empty()) value += ", ";
    value += t;
  });
  if (!value.empty()) value += ", ";
  value += peer;
  h.set("x-forwarded-for", value);

  // X-Real-IP (nginx's convention) names the client, like the last X-Forwarded-For entry: the
  // proxy's value is kept, else the client address it vouched for.
  if (!h.contains("x-real-ip")) {
    if (ex.client_address() == ex.peer().address()) h.set("x-real-ip", peer);
    else h.set("x-real-ip", address_text(ex.client_address()));
  }
  if (!h.contains("x-forwarded-proto")) h.set("x-forwarded-proto", proto);
  if (!h.contains("x-forwarded-host")) {
    if (host.empty()) h.remove("x-forwarded-host");
    else h.set("x-forwarded-host", host);
  }

  // Forwarded: our element after the proxy's.
  value.clear();
  for (auto f : h)
    if (iequals(f.name, "forwarded")) {
      if (!value.empty()) value += ", ";
      value += trim_ows(f.value);
    }
  if (!value.empty()) value += ", ";
  append_forwarded_element(value, peer, v6, host, proto);
  h.set("forwarded", value);
}

}  // namespace gatehouse::detail
