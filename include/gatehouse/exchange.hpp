// One request/response pair in flight, with typed per-request slots for middleware state.
#pragma once
#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <memory_resource>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>

#include "gatehouse/body.hpp"
#include "gatehouse/request.hpp"
#include "gatehouse/response.hpp"
#include "gatehouse/trace_context.hpp"

namespace gatehouse {

class MetricsShard;
struct ClientIdentity;
namespace detail {
struct ExchangeAccess;
struct WorkerMetrics;
class RequestBodyBuffer;
}
struct SecurityEvent;
class SecurityEvents;

class Exchange {
 public:
  using clock = std::chrono::steady_clock;

  Exchange();
  /// A ready-made request, for tests: peer 127.0.0.1:40000 (not trusted), request id "test-id".
  /// gatehouse/testing.hpp can set the other connection facts (peer, TLS, route name).
  Exchange(std::string_view method, std::string_view target,
           std::initializer_list<std::pair<std::string_view, std::string_view>> headers = {});
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  Request& request() noexcept { return request_; }
  const Request& request() const noexcept { return request_; }
  /// The response headed for the client (from the upstream, a local handler or a middleware).
  Response& response() noexcept { return response_; }
  const Response& response() const noexcept { return response_; }

  /// Address of the TCP peer (may be a trusted proxy).
  const asio::ip::tcp::endpoint& peer() const noexcept { return peer_; }
  /// The client's address: the peer, or the address a trusted proxy reported in X-Forwarded-For.
  const asio::ip::address& client_address() const noexcept { return client_address_; }
  /// True when the peer is a configured trusted proxy (its X-Forwarded-* and X-Request-Id count).
  bool peer_trusted() const noexcept { return peer_trusted_; }
  /// True when the client connected with TLS.
  bool secure() const noexcept { return secure_; }
  /// SNI host name the client asked for (TLS only), empty otherwise.
  std::string_view sni() const noexcept { return sni_; }
  /// The identity in the client's verified certificate (an mTLS listener), null otherwise
  /// (include gatehouse/client_identity.hpp to read it).
  const ClientIdentity* client_identity() const noexcept { return client_identity_; }
  /// Subject of the client's verified certificate (mTLS listeners), RFC 2253 form
  /// ("CN=client,O=Example"); empty without one. Same as client_identity()->subject.
  std::string_view client_cert_subject() const noexcept;

  std::string_view request_id() const noexcept { return request_id_; }
  /// Replaces the request id (the RequestId middleware sets it; an application's own id scheme
  /// may too). Error bodies, logs and the echoed header use it.
  void set_request_id(std::string_view id) { request_id_.assign(id); }
  std::string_view route_name() const noexcept { return route_name_; }
  /// W3C trace id of this request (32 lowercase hex digits): the caller's when its traceparent was
  /// continued, else a new one. Empty when trace context is off (GatewayOptions::trace_context).
  std::string_view trace_id() const noexcept { return trace_.trace_id(); }
  /// The gateway's span id for this request (16 hex digits): the parent-id the upstream receives.
  std::string_view span_id() const noexcept { return trace_.span_id(); }
  /// The whole trace context: caller's span, sampled flag, continued or started here.
  const TraceContext& trace() const noexcept { return trace_; }
  /// "host:port" of the upstream endpoint that served the request; empty if none.
  std::string_view upstream_endpoint() const noexcept { return upstream_endpoint_; }

  /// Reports a security event about this request (include gatehouse/security_event.hpp): the
  /// route, request id, trace id, client and peer addresses, method, path, user and client certificate subject (the token's subject)
  /// are filled in where the event leaves them empty. Never blocks; does nothing when the gateway
  /// has no SecurityEvents (GatewayOptions::security_events).
  void report(SecurityEvent event);
  /// Where report() sends events; null when nothing listens. Test it before building an event
  /// on a hot path.
  SecurityEvents* security_events() const noexcept { return security_events_; }

  /// Reads the request body ahead of the origin, up to `limit` bytes, and keeps what it read: for
  /// a middleware that must see the body before the request goes on (a WAF, a signature check).
  /// The origin and the request-body hooks still get the whole body, unchanged. Call it from the
  /// awaitable of a Flow::later that on_request returned (before the origin starts); called again
  /// with a larger limit it reads on. Memory: up to `limit` plus one read of the connection.
  asio::awaitable<BufferedBody> read_request_body(std::size_t limit);

  clock::time_point start_time() const noexcept { return start_; }
  std::uint64_t bytes_received() const noexcept { return bytes_in_; }
  std::uint64_t bytes_sent() const noexcept { return bytes_out_; }

  /// This worker's shard of the gateway's metrics registry (Gateway::metrics()), for middleware
  /// that counts a metric of its own: `if (auto* s = ex.metrics()) my_counter.inc(*s, {...});`.
  /// Null when the gateway's metrics are off, or outside a gateway (tests).
  MetricsShard* metrics() const noexcept { return metrics_shard_; }

  /// Stores a T for the rest of this exchange (replacing an earlier one) and returns it.
  /// Memory comes from a small arena inside the exchange: no heap allocation for small T.
  template <class T, class... Args>
  T& emplace(Args&&... args) {
    if (T* old = find<T>()) {
      *old = T(std::forward<Args>(args)...);
      return *old;
    }
    void* mem = arena_.allocate(sizeof(T), alignof(T));
    T* obj = ::new (mem) T(std::forward<Args>(args)...);
    add_slot(type_key<T>(), obj, [](void* p) noexcept { static_cast<T*>(p)->~T(); });
    return *obj;
  }
  /// The T stored by emplace<T>(), or nullptr.
  template <class T>
  T* find() noexcept {
    return static_cast<T*>(find_slot(type_key<T>()));
  }
  template <class T>
  const T* find() const noexcept {
    return static_cast<const T*>(find_slot(type_key<T>()));
  }

 private:
  friend struct detail::ExchangeAccess;  // the gateway core sets the connection facts
  using Destroy = void (*)(void*) noexcept;
  struct Slot {
    const void* key;
    void* obj;
    Destroy destroy;
  };
  template <class T>
  static const void* type_key() noexcept {
    static const char key = 0;
    return &key;
  }
  void add_slot(const void* key, void* obj, Destroy d);
  void destroy_slots() noexcept;
  void* find_slot(const void* key) const noexcept;

  Request request_;
  Response response_;
  asio::ip::tcp::endpoint peer_;
  asio::ip::address client_address_;
  std::string sni_;
  std::string request_id_;
  std::string route_name_;
  std::string upstream_endpoint_;
  TraceContext trace_;
  std::string wire_head_;  // the serialized response head (memory kept when recycled)
  SecurityEvents* security_events_ = nullptr;  // owned by the gateway's options
  const ClientIdentity* client_identity_ = nullptr;  // owned by the connection
  clock::time_point start_;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
  MetricsShard* metrics_shard_ = nullptr;
  detail::WorkerMetrics* worker_metrics_ = nullptr;
  detail::RequestBodyBuffer* body_buffer_ = nullptr;  // set by the pipeline until the origin starts
  bool peer_trusted_ = false;
  bool secure_ = false;

  static constexpr std::size_t kSlotCapacity = 8;
  Slot slots_[kSlotCapacity];
  Slot* extra_slots_ = nullptr;  // from the arena when more than kSlotCapacity types are stored
  std::size_t slot_count_ = 0;
  std::size_t extra_capacity_ = 0;
  alignas(std::max_align_t) std::byte inline_arena_[256];
  std::pmr::monotonic_buffer_resource arena_{inline_arena_, sizeof(inline_arena_)};
};

}  // namespace gatehouse
