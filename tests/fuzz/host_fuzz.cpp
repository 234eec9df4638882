// libFuzzer target: Host and absolute-form authority validation (lib/http1/authority.cpp), checked
// against an independent reference written from the grammar in its header: name labels of
// [A-Za-z0-9_-]{1,63} joined by '.', at most 253 bytes, or a bracketed IPv6 address that
// inet_pton accepts; then an optional ':' and 1-5 digits up to 65535. An accepted value also
// never holds a byte that would let it be read as a list, userinfo, path or escape.
#include <arpa/inet.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http1/authority.hpp"

namespace {

bool reference_port(std::string_view p) {
  if (p.empty() || p.size() > 5) return false;
  for (char c : p)
    if (c < '0' || c > '9') return false;
  return std::stoul(std::string(p)) <= 65535;
}

bool reference_name(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  std::size_t start = 0;
  for (;;) {
    const std::size_t dot = h.find('.', start);
    const std::string_view label = h.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    for (char c : label)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool reference(std::string_view a) {
  if (!a.empty() && a.front() == '[') {
    const auto close = a.find(']');
    if (close == std::string_view::npos) return false;
    const std::string inside(a.substr(1, close - 1));
    if (inside.find('\0') != std::string::npos) return false;
    unsigned char buf[16];
    if (inside.empty() || ::inet_pton(AF_INET6, inside.c_str(), buf) != 1) return false;
    const std::string_view rest = a.substr(close + 1);
    return rest.empty() || (rest.front() == ':' && reference_port(rest.substr(1)));
  }
  const auto colon = a.find(':');
  if (colon == std::string_view::npos) return reference_name(a);
  return reference_name(a.substr(0, colon)) && reference_port(a.substr(colon + 1));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view a(reinterpret_cast<const char*>(data), size);
  const bool got = gatehouse::detail::is_valid_authority(a);
  if (got != reference(a)) {
    std::fprintf(stderr, "host_fuzz: is_valid_authority(\"%.*s\") = %d, reference says %d\n",
                 static_cast<int>(a.size()), a.data(), got, !got);
    std::abort();
  }
  if (got && a.find_first_of(", @/\\%?#\t\r\n") != std::string_view::npos) {
    std::fprintf(stderr, "host_fuzz: accepted a separator: \"%.*s\"\n", static_cast<int>(a.size()), a.data());
    std::abort();
  }
  return 0;
}
