// The gateway core's way to set what an Exchange records about its connection and its progress,
// and to recycle Exchange objects between requests. Not part of the public API.
#pragma once
#include <chrono>
#include <memory>
#include <string_view>
#include <vector>

#include "gatehouse/exchange.hpp"
#include "util/recycler.hpp"

namespace gatehouse::detail {

struct RequestAccess {
  static std::string& target(Request& r) noexcept { return r.target_; }
  static std::string& method(Request& r) noexcept { return r.method_; }
  /// Empties the request for the next message, keeping the memory of its strings and fields.
  static void clear(Request& r) noexcept {
    r.method_.clear();
    r.target_.clear();
    r.headers_.clear();
    r.version_minor_ = 1;
    r.content_length_ = 0;
  }
};

struct ExchangeAccess {
  static void set_peer(Exchange& ex, const asio::ip::tcp::endpoint& ep, bool trusted) noexcept {
    ex.peer_ = ep;
    ex.client_address_ = ep.address();
    ex.peer_trusted_ = trusted;
  }
  static void set_client_address(Exchange& ex, const asio::ip::address& a) noexcept { ex.client_address_ = a; }
  static void set_secure(Exchange& ex, bool secure, std::string_view sni) {
    ex.secure_ = secure;
    ex.sni_.assign(sni);
  }
  /// The connection's client identity (it outlives the exchange), or null.
  static void set_client_identity(Exchange& ex, const ClientIdentity* id) noexcept { ex.client_identity_ = id; }
  static void set_route_name(Exchange& ex, std::string_view n) { ex.route_name_.assign(n); }
  static void set_upstream_endpoint(Exchange& ex, std::string_view e) { ex.upstream_endpoint_.assign(e); }
  static void set_security_events(Exchange& ex, SecurityEvents* events) noexcept { ex.security_events_ = events; }
  static void add_bytes_received(Exchange& ex, std::uint64_t n) noexcept { ex.bytes_in_ += n; }
  static void add_bytes_sent(Exchange& ex, std::uint64_t n) noexcept { ex.bytes_out_ += n; }
  static void set_start_time(Exchange& ex, Exchange::clock::time_point t) noexcept { ex.start_ = t; }
  /// The worker's metrics (null: off); `shard` is the worker's shard, which ex.metrics() returns.
  static void set_metrics(Exchange& ex, WorkerMetrics* m, MetricsShard* shard) noexcept {
    ex.worker_metrics_ = m;
    ex.metrics_shard_ = shard;
  }
  static WorkerMetrics* metrics(const Exchange& ex) noexcept { return ex.worker_metrics_; }
  static TraceContext& trace(Exchange& ex) noexcept { return ex.trace_; }
  /// Where read_request_body reads from (null: nowhere, the origin has started).
  static void set_body_buffer(Exchange& ex, RequestBodyBuffer* b) noexcept { ex.body_buffer_ = b; }
  /// Scratch for the serialized response head; recycled with the exchange.
  static std::string& wire_head(Exchange& ex) noexcept { return ex.wire_head_; }
  /// Returns a used exchange to the state of a new one, keeping the memory of its strings and
  /// header fields (so a recycled exchange allocates nothing for the next request).
  static void reset(Exchange& ex) noexcept;
};

/// Resets an exchange given back (ExchangeAccess::reset), so that its slots end with the request.
struct ResetExchange {
  void operator()(Exchange& ex) const noexcept { ExchangeAccess::reset(ex); }
};
/// Recycled exchanges of one worker: a request takes one and gives it back when it ends.
using ExchangePool = Recycler<Exchange, ResetExchange>;

}  // namespace gatehouse::detail
