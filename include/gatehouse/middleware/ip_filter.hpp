// IpFilter: allow and deny lists of CIDR blocks, per route (as middleware) or per listener
// (ListenerOptions::ip_filter, checked when a connection is accepted, before TLS).
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <asio/ip/address.hpp>

#include "gatehouse/middleware.hpp"

namespace gatehouse {

/// Which address a route's filter looks at.
enum class IpFilterAddress : unsigned char {
  client,  ///< the client: the TCP peer, or what a trusted proxy reported (X-Forwarded-For)
  peer,    ///< the TCP peer itself (a trusted proxy is filtered as itself)
};

struct IpFilterOptions {
  /// Names the filter in metrics (label "filter") and security events (rule.name).
  std::string name = "ip_filter";
  /// CIDR blocks or addresses ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7"). IPv4 blocks also match
  /// IPv4-mapped IPv6 clients (::ffff:10.1.2.3), and IPv6 blocks IPv4 clients in mapped form.
  std::vector<std::string> allow{};
  std::vector<std::string> deny{};
  /// List files, one block per line ('#' starts a comment), added to allow / deny. They may change
  /// while the gateway runs: see file_check_interval.
  std::string allow_file{};
  std::string deny_file{};
  /// How often the files' modification times are checked (off the worker threads); a changed file
  /// is read and takes effect at once, a broken one keeps the previous list (and is logged). Zero:
  /// the files are read once, and again only with a configuration reload.
  std::chrono::milliseconds file_check_interval{1000};
  /// A route's filter only: a listener's filter always looks at the TCP peer.
  IpFilterAddress address = IpFilterAddress::client;
};

/// The outcome for one address: the deny list wins over the allow list; with an allow list, an
/// address must be in it.
enum class IpVerdict : unsigned char {
  allowed,           ///< no list matched, and there is no allow list
  allow_listed,      ///< in the allow list, not in the deny list
  deny_listed,       ///< in the deny list: refused
  not_allow_listed,  ///< an allow list exists and the address is not in it: refused
};
constexpr bool permits(IpVerdict v) noexcept { return v == IpVerdict::allowed || v == IpVerdict::allow_listed; }

/// A refused request gets 403 and an ip_filtered security event; every decision is counted in
/// gatehouse_ip_filter_total{filter, verdict}. Lookups take a binary search over merged
/// intervals (a few dozen nanoseconds for half a million blocks) and no lock, even while a list
/// file is being reloaded.
class IpFilter final : public Middleware {
 public:
  /// Parses the blocks and reads the files. Throws std::invalid_argument for a bad block (a file's
  /// names its line: "deny.txt:12: invalid CIDR block ...") or for no list at all, and
  /// std::runtime_error for a file that cannot be read.
  explicit IpFilter(IpFilterOptions options);
  ~IpFilter() override;

  Flow on_request(Exchange& ex) const override;

  /// The verdict for `addr`. Never allocates or blocks.
  IpVerdict check(const asio::ip::address& addr) const noexcept;
  /// Checks the list files now (as the periodic check does); true when one was reloaded.
  bool refresh_files();
  /// Blocks in force in each list (inline and from its file).
  std::size_t allow_size() const noexcept;
  std::size_t deny_size() const noexcept;
  const IpFilterOptions& options() const noexcept;

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::shared_ptr<void> io_;  // keeps the background thread of the file checks alive
};

/// The label value of IpVerdict in metrics: "allowed", "allow_listed", "deny_listed",
/// "not_allow_listed".
std::string_view to_string(IpVerdict v) noexcept;

}  // namespace gatehouse
