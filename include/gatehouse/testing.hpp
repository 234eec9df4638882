// Test support, installed with the library: drive a middleware or a whole chain with no sockets.
#pragma once
#include <chrono>
#include <deque>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <asio/ip/tcp.hpp>

#include "gatehouse/client_identity.hpp"
#include "gatehouse/clock.hpp"
#include "gatehouse/exchange.hpp"
#include "gatehouse/flow.hpp"
#include "gatehouse/middleware.hpp"
#include "gatehouse/security_events.hpp"

namespace gatehouse::testing {

/// A request as a client would send it; peer 127.0.0.1:40000, not trusted, request id "test-id".
Exchange exchange(std::string_view method, std::string_view target,
                  std::initializer_list<std::pair<std::string_view, std::string_view>> headers = {});

/// Sets what the gateway would know about the connection: the peer address and whether it is a
/// trusted proxy (the client address becomes the peer's; set_client_address changes it).
void set_peer(Exchange& ex, const asio::ip::tcp::endpoint& peer, bool trusted = false);
/// The client's address as a trusted proxy reported it.
void set_client_address(Exchange& ex, const asio::ip::address& client);
/// The client connected with TLS (and asked for this SNI name).
void set_secure(Exchange& ex, bool secure, std::string_view sni = {});
/// The identity of a verified client certificate (as an mTLS listener would read it); `identity`
/// must outlive the exchange's use (null: none).
void set_client_identity(Exchange& ex, const ClientIdentity* identity);
/// The name of the route the request matched (empty: none).
void set_route_name(Exchange& ex, std::string_view name);
/// The upstream endpoint ("host:port") that served the request.
void set_upstream_endpoint(Exchange& ex, std::string_view endpoint);
/// Handles the request's traceparent/tracestate as a listener with `options` would (continue or
/// start a trace, rewrite both fields), so that ex.trace_id() is set. With `trusted`,
/// options.trusted_sources decide (a test has no trusted_proxies).
void apply_trace_context(Exchange& ex, const TraceContextOptions& options = {});

/// Collects the security events that exchanges report (Exchange::report), for tests:
///   gt::EventRecorder recorder;
///   recorder.attach(ex);
///   gt::run_chain(chain, ex);
///   CHECK(recorder.events().at(0).kind == gatehouse::SecurityEventKind::authentication_failure);
/// security_events() also fits GatewayOptions::security_events in a loopback test. No rate cap.
class EventRecorder {
 public:
  EventRecorder();
  /// Exchange::report on `ex` goes to this recorder (which must outlive the exchange's use).
  void attach(Exchange& ex) const noexcept;
  /// Every event reported so far, oldest first (waits until the reporter passed them on).
  std::vector<SecurityEvent> events() const;
  /// The same events as formatted lines (ECS JSON).
  std::vector<std::string> lines() const;
  const std::shared_ptr<SecurityEvents>& security_events() const noexcept { return events_; }

 private:
  class Sink;
  std::shared_ptr<Sink> sink_;
  std::shared_ptr<SecurityEvents> events_;
};

/// Settles a Flow: a Flow::later is run to completion on a private io_context. Exceptions from the
/// work propagate to the caller.
Flow run(Flow flow);

/// A clock that moves only when told to.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(time_point start = time_point{std::chrono::seconds{1'700'000'000}}) : now_(start) {}
  time_point now() const noexcept override { return now_; }
  void advance(std::chrono::nanoseconds d) noexcept { now_ += std::chrono::duration_cast<time_point::duration>(d); }
  void set(time_point t) noexcept { now_ = t; }

 private:
  time_point now_;
};

/// Stands in for a service: records each request it receives and answers with queued responses
/// (or 200 "ok" when none is queued).
class FakeUpstream {
 public:
  struct Received {
    std::string method, target;
    Headers headers{};
    std::string body{};
  };
  /// Queues the answer to the next request. The body streams to the client as an upstream's
  /// body of unknown length would (chunked), so response-body hooks may resize it.
  void respond_with(Response r, std::string body = {});
  const std::vector<Received>& received() const noexcept { return received_; }

 private:
  friend class FakeUpstreamOrigin;
  /// Records the request and returns the response and its body.
  std::pair<Response, std::string> serve(const Request& req, std::string body);
  std::deque<std::pair<Response, std::string>> queued_;
  std::vector<Received> received_;
};

/// What the client would have received from run_chain.
struct ChainResult {
  unsigned status = 0;
  Headers headers{};
  std::string body{};
  bool reached_upstream = false;
};

/// Runs a chain through the gateway's own pipeline, with `upstream` (or a default 200 "ok") as
/// the origin and no sockets: on_request and on_request_body front to back; unless one answered,
/// the upstream answers; then on_response and on_response_body back to front, and on_complete for
/// each middleware that was entered. Exceptions from hooks become a 500 exactly as in the gateway.
/// `request_body` arrives in one piece (a chunked body of that size).
ChainResult run_chain(const std::vector<std::shared_ptr<const Middleware>>& chain, Exchange& ex,
                      FakeUpstream* upstream = nullptr, std::string_view request_body = {});

}  // namespace gatehouse::testing
