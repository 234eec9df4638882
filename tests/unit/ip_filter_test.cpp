// IP filtering: the merged-interval prefix set (against the linear CidrSet on random blocks), list
// files that change at run time, the IpFilter middleware's verdicts, events and metrics, and its
// configuration.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <asio/ip/address.hpp>
#include <nlohmann/json.hpp>

#include "gatehouse/config.hpp"
#include "gatehouse/middleware/ip_filter.hpp"
#include "gatehouse/testing.hpp"
#include "net/address_list.hpp"
#include "net/cidr.hpp"
#include "net/prefix_set.hpp"
#include "support/temp_dir.hpp"

using namespace gatehouse;
using gatehouse::detail::AddressList;
using gatehouse::detail::Cidr;
using gatehouse::detail::CidrSet;
using gatehouse::detail::PrefixSet;
namespace gt = gatehouse::testing;
using nlohmann::json;

namespace {

asio::ip::address ip(const char* s) { return asio::ip::make_address(s); }

PrefixSet set_of(std::initializer_list<const char*> blocks) {
  PrefixSet s;
  for (const char* b : blocks) REQUIRE(s.add(b));
  s.build();
  return s;
}

// Moves the file's modification time on, so that a rewrite within the same clock tick is seen.
void rewrite(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::trunc) << content;
}

ConfigError config_error(const json& doc) {
  try {
    load_config(doc.dump());
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("expected a ConfigError for " << doc.dump());
  return ConfigError("", "");
}

json with_route_filter(const json& options) {
  return json{{"listeners", {{{"port", 8080}}}},
              {"upstreams", {{"svc", {{"endpoints", {"127.0.0.1:9001"}}}}}},
              {"routes", {{{"path", "/"}, {"upstream", "svc"}, {"middleware", {{{"name", "ip_filter"}, {"options", options}}}}}}}};
}

}  // namespace

TEST_CASE("prefix set: IPv4, IPv6 and IPv4-mapped lookups") {
  const PrefixSet s = set_of({"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::ffff:198.51.100.0/120"});
  CHECK(s.contains(ip("10.0.0.0")));
  CHECK(s.contains(ip("10.255.255.255")));
  CHECK_FALSE(s.contains(ip("11.0.0.0")));
  CHECK_FALSE(s.contains(ip("9.255.255.255")));
  CHECK(s.contains(ip("192.0.2.7")));
  CHECK_FALSE(s.contains(ip("192.0.2.8")));
  CHECK(s.contains(ip("::ffff:10.1.2.3")));  // a mapped client against an IPv4 block
  CHECK(s.contains(ip("2001:db8:ffff::1")));
  CHECK_FALSE(s.contains(ip("2001:db9::")));
  CHECK(s.contains(ip("198.51.100.20")));  // an IPv4 client against a mapped IPv6 block
  CHECK_FALSE(s.contains(ip("198.51.101.1")));
  CHECK_FALSE(s.contains(ip("::1")));
  CHECK(s.size() == 4);

  const PrefixSet all = set_of({"::/0"});
  CHECK(all.contains(ip("1.2.3.4")));  // ::/0 covers the mapped range too
  CHECK(all.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  const PrefixSet v4all = set_of({"0.0.0.0/0"});
  CHECK(v4all.contains(ip("255.255.255.255")));
  CHECK_FALSE(v4all.contains(ip("2001:db8::1")));
  const PrefixSet none;
  CHECK_FALSE(none.contains(ip("1.2.3.4")));
}

TEST_CASE("prefix set: overlapping and adjacent blocks merge") {
  const PrefixSet s = set_of({"10.0.0.0/25", "10.0.0.128/25", "10.0.0.0/24", "10.0.1.0/24", "10.0.0.5",
                              "2001:db8::/64", "2001:db8:0:1::/64", "255.255.255.255"});
  CHECK(s.intervals() == 3);  // 10.0.0.0-10.0.1.255, 255.255.255.255, one IPv6 run
  CHECK(s.contains(ip("10.0.1.255")));
  CHECK_FALSE(s.contains(ip("10.0.2.0")));
  CHECK(s.contains(ip("2001:db8:0:1:ffff:ffff:ffff:ffff")));
  CHECK_FALSE(s.contains(ip("2001:db8:0:2::")));
  CHECK(s.contains(ip("255.255.255.255")));
}

TEST_CASE("prefix set: the same answers as a linear scan, on random blocks") {
  std::mt19937_64 rng(42);
  std::vector<std::string> blocks;
  for (int i = 0; i < 3000; ++i) {
    const auto r = rng();
    if (i % 3 == 0) {
      char text[64];
      std::snprintf(text, sizeof text, "2001:db8:%x:%x::/%u", unsigned(r & 0xff), unsigned((r >> 8) & 0xffff),
                    unsigned(32 + (r >> 24) % 97));
      blocks.push_back(text);
    } else {
      blocks.push_back(std::to_string((r >> 8) & 0xff) + "." + std::to_string((r >> 16) & 0xff) + "." +
                       std::to_string((r >> 24) & 0xff) + "." + std::to_string((r >> 32) & 0xff) + "/" +
                       std::to_string(8 + (r >> 40) % 25));
    }
  }
  PrefixSet fast;
  CidrSet slow;
  for (const auto& b : blocks) {
    REQUIRE(fast.add(b));
    REQUIRE(slow.add(b));
  }
  fast.build();
  int hits = 0;
  for (int i = 0; i < 20000; ++i) {
    const auto r = rng();
    asio::ip::address a;
    if (i % 3 == 0) {
      asio::ip::address_v6::bytes_type b{0x20, 0x01, 0x0d, 0xb8};
      for (int k = 4; k < 16; ++k) b[k] = static_cast<unsigned char>(rng() & (k < 8 ? 0xff : 0x0f));
      b[4] = static_cast<unsigned char>(r & 0x0f);  // keep hits likely
      a = asio::ip::make_address_v6(b);
    } else {
      a = asio::ip::make_address_v4(static_cast<std::uint32_t>(r));
    }
    const bool expected = slow.contains(a);
    hits += expected;
    REQUIRE_MESSAGE(fast.contains(a) == expected, a.to_string());
  }
  CHECK(hits > 100);  // the probe hit something: the test means something
}

TEST_CASE("address list file: comments, errors with the line, reload on change") {
  test::TempDir tmp;
  const std::string file = tmp.file("deny.txt", "# blocked\n203.0.113.0/24  # a whole net\n\n2001:db8::1\n");
  AddressList list({*Cidr::parse("198.51.100.1")}, file);
  CHECK(list.size() == 3);
  CHECK(list.contains(ip("203.0.113.9")));
  CHECK(list.contains(ip("198.51.100.1")));
  CHECK(list.refresh() == AddressList::Refresh::unchanged);

  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  rewrite(file, "192.0.2.0/24\n");
  CHECK(list.refresh() == AddressList::Refresh::reloaded);
  CHECK(list.contains(ip("192.0.2.1")));
  CHECK_FALSE(list.contains(ip("203.0.113.9")));
  CHECK(list.contains(ip("198.51.100.1")));  // inline blocks stay

  // A broken file keeps the list in force, and says where it broke.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  rewrite(file, "192.0.2.0/24\n10.0.0.0/33\n");
  std::string error;
  CHECK(list.refresh(&error) == AddressList::Refresh::failed);
  CHECK(error == file + ":2: invalid CIDR block \"10.0.0.0/33\"");
  CHECK(list.contains(ip("192.0.2.1")));
  CHECK(list.refresh() == AddressList::Refresh::unchanged);  // reported once

  CHECK_THROWS_WITH_AS(AddressList({}, tmp.dir.string() + "/missing.txt"),
                       doctest::Contains("cannot read the address list"), std::runtime_error);
}

TEST_CASE("ip filter: the deny list wins, an allow list admits only its own") {
  IpFilter deny_only({.deny = {"203.0.113.0/24"}});
  CHECK(deny_only.check(ip("203.0.113.5")) == IpVerdict::deny_listed);
  CHECK(deny_only.check(ip("192.0.2.1")) == IpVerdict::allowed);

  IpFilter both({.allow = {"10.0.0.0/8", "::1"}, .deny = {"10.6.6.0/24"}});
  CHECK(both.check(ip("10.1.1.1")) == IpVerdict::allow_listed);
  CHECK(both.check(ip("::ffff:10.1.1.1")) == IpVerdict::allow_listed);
  CHECK(both.check(ip("10.6.6.6")) == IpVerdict::deny_listed);
  CHECK(both.check(ip("192.0.2.1")) == IpVerdict::not_allow_listed);
  CHECK(both.check(ip("::1")) == IpVerdict::allow_listed);
  CHECK(both.allow_size() == 2);
  CHECK(both.deny_size() == 1);

  CHECK_THROWS_AS(IpFilter(IpFilterOptions{}), std::invalid_argument);
  CHECK_THROWS_WITH_AS(IpFilter({.deny = {"10.0.0.0/8", "nonsense"}}),
                       doctest::Contains("deny[1]: invalid CIDR block"), std::invalid_argument);
}

TEST_CASE("ip filter middleware: 403 and an ip_filtered event, on the client or the peer address") {
  gt::EventRecorder recorder;
  IpFilter by_client({.name = "blocklist", .deny = {"203.0.113.0/24"}});
  IpFilter by_peer({.name = "proxies", .allow = {"10.0.0.0/8"}, .address = IpFilterAddress::peer});

  // A trusted proxy (10.0.0.2) reports the real client 203.0.113.9.
  auto ex = gt::exchange("GET", "/admin");
  recorder.attach(ex);
  gt::set_peer(ex, {ip("10.0.0.2"), 5555}, true);
  gt::set_client_address(ex, ip("203.0.113.9"));
  gt::set_route_name(ex, "admin");
  Flow f = by_client.on_request(ex);
  REQUIRE(f.is_response());
  CHECK(f.response().status() == 403);
  CHECK(by_peer.on_request(ex).is_next());  // the peer is the proxy, which is allowed

  auto direct = gt::exchange("GET", "/");
  recorder.attach(direct);
  gt::set_peer(direct, {ip("192.0.2.1"), 5555});
  CHECK(by_client.on_request(direct).is_next());
  f = by_peer.on_request(direct);
  REQUIRE(f.is_response());
  CHECK(f.response().status() == 403);

  const auto events = recorder.events();
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == SecurityEventKind::ip_filtered);
  CHECK(events[0].reason == "address in the deny list");
  CHECK(events[0].rule_name == "blocklist");
  CHECK(events[0].http_status == 403);
  CHECK(events[0].route == "admin");
  REQUIRE(events[0].client_ip);
  CHECK(events[0].client_ip->to_string() == "203.0.113.9");
  CHECK(events[1].reason == "address not in the allow list");
  CHECK(events[1].rule_name == "proxies");
}

TEST_CASE("ip filter: a list file is watched off the workers and swapped while lookups go on") {
  test::TempDir tmp;
  const std::string file = tmp.file("deny.txt", "192.0.2.0/24\n");
  IpFilter filter({.deny_file = file, .file_check_interval = std::chrono::milliseconds(20)});
  CHECK(filter.check(ip("192.0.2.1")) == IpVerdict::deny_listed);
  CHECK(filter.check(ip("198.51.100.1")) == IpVerdict::allowed);

  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  rewrite(file, "198.51.100.0/24\n");
  // Lookups run all along, as workers would, until the background check has swapped the list.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool swapped = false;
  while (!swapped && std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 1000; ++i) (void)filter.check(ip("192.0.2.1"));
    swapped = filter.check(ip("198.51.100.1")) == IpVerdict::deny_listed;
  }
  CHECK(swapped);
  CHECK(filter.check(ip("192.0.2.1")) == IpVerdict::allowed);
}

TEST_CASE("ip filter configuration: middleware and listener, errors at the key") {
  test::TempDir tmp;
  const std::string good = tmp.file("allow.txt", "10.0.0.0/8\n");
  const std::string bad = tmp.file("deny.txt", "10.0.0.0/8\n\n300.1.1.1\n");

  json doc = with_route_filter({{"name", "office"}, {"allow", {"192.0.2.0/24"}}, {"allow_file", good},
                                {"deny", {"10.6.0.0/16"}}, {"address", "peer"}, {"file_check_interval_ms", 0}});
  doc["listeners"][0]["ip_filter"] = {{"deny", {"203.0.113.0/24"}}};
  const GatewayConfig config = load_config(doc.dump());
  REQUIRE(config.listeners.at(0).ip_filter);
  CHECK(config.listeners[0].ip_filter->check(ip("203.0.113.1")) == IpVerdict::deny_listed);
  auto filter = std::dynamic_pointer_cast<const IpFilter>(config.routes.at(0).middleware.at(0));
  REQUIRE(filter);
  CHECK(filter->options().name == "office");
  CHECK(filter->options().address == IpFilterAddress::peer);
  CHECK(filter->check(ip("10.1.2.3")) == IpVerdict::allow_listed);
  CHECK(filter->check(ip("10.6.0.1")) == IpVerdict::deny_listed);

  auto e = config_error(with_route_filter({{"deny", {"10.0.0.0/8", "10.0.0.0/40"}}}));
  CHECK(e.path() == "/routes/0/middleware/0/options/deny/1");
  CHECK(e.reason().find("invalid CIDR block") != std::string::npos);
  e = config_error(with_route_filter({{"deny_file", bad}}));
  CHECK(e.path() == "/routes/0/middleware/0/options/deny_file");
  CHECK(e.reason() == bad + ":3: invalid CIDR block \"300.1.1.1\"");
  e = config_error(with_route_filter({{"address", "client"}}));
  CHECK(e.reason().find("needs at least one of") != std::string::npos);
  e = config_error(with_route_filter({{"deny", {"10.0.0.0/8"}}, {"address", "proxy"}}));
  CHECK(e.path() == "/routes/0/middleware/0/options/address");
  json listener = with_route_filter({{"deny", {"10.0.0.0/8"}}});
  listener["listeners"][0]["ip_filter"] = {{"deny", {"10.0.0.0/8"}}, {"address", "client"}};
  e = config_error(listener);
  CHECK(e.path() == "/listeners/0/ip_filter/address");  // only the peer is known at accept
}
