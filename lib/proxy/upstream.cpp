#include "gatehouse/upstream.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "net/stream.hpp"
#include "proxy/health_checker.hpp"
#include "proxy/upstream_impl.hpp"
#include "tls/tls_context.hpp"
#include "util/text.hpp"

namespace gatehouse {

namespace detail {

UpstreamImpl::Target parse_endpoint(const std::string& text) {
  UpstreamImpl::Target t;
  t.label = text;
  std::string_view s = text;
  std::string_view host, port;
  if (s.starts_with('[')) {
    const auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
      throw std::invalid_argument("expected \"[IPv6]:port\", got \"" + text + "\"");
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos || s.find(':') != colon)
      throw std::invalid_argument("expected \"host:port\", got \"" + text + "\"");
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || p == 0 || p > 65535)
    throw std::invalid_argument("invalid port in \"" + text + "\"");
  if (host.empty()) throw std::invalid_argument("missing host in \"" + text + "\"");
  t.host = std::string(host);
  t.port = static_cast<std::uint16_t>(p);
  asio::error_code aec;
  asio::ip::make_address(t.host, aec);
  t.numeric = !aec;
  if (!t.numeric) {
    for (char c : t.host)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
        throw std::invalid_argument("invalid host name in \"" + text + "\"");
  }
  return t;
}

}  // namespace detail

namespace {

// Options that would make the health logic misbehave are refused up front.
void check_health_options(const UpstreamOptions& o) {
  for (const auto& [name, weight] : o.weights)
    if (weight < 1 || weight > 10'000) throw std::invalid_argument("weight of \"" + name + "\" must be in 1..10000");
  const UpstreamHealthOptions& h = o.health;
  if (h.panic_threshold_percent > 100) throw std::invalid_argument("panic_threshold_percent must be in 0..100");
  if (h.slow_start.count() < 0) throw std::invalid_argument("slow_start must not be negative");
  if (const auto& a = h.active) {
    if (a->interval.count() <= 0 || a->timeout.count() <= 0) throw std::invalid_argument("health check interval and timeout must be positive");
    if (a->healthy_threshold < 1 || a->unhealthy_threshold < 1) throw std::invalid_argument("health check thresholds must be at least 1");
    if (!(a->jitter >= 0 && a->jitter <= 0.5)) throw std::invalid_argument("health check jitter must be in 0..0.5");
    if (a->kind == HealthCheckOptions::Kind::http) {
      if (a->path.empty() || a->path.front() != '/' || detail::has_control(a->path) || a->path.find(' ') != std::string::npos)
        throw std::invalid_argument("health check path must start with \"/\" and hold no space or control character");
      if (detail::has_control(a->host) || a->host.find(' ') != std::string::npos) throw std::invalid_argument("invalid health check host");
      if (a->expected_statuses.empty()) throw std::invalid_argument("health check needs expected statuses");
      for (const auto& [lo, hi] : a->expected_statuses)
        if (lo < 100 || hi > 599 || lo > hi) throw std::invalid_argument("health check status ranges must be within 100..599");
    }
  }
  if (const auto& d = h.outlier_detection) {
    if (d->base_ejection_time.count() <= 0 || d->max_ejection_time < d->base_ejection_time)
      throw std::invalid_argument("outlier detection: base_ejection_time must be positive and at most max_ejection_time");
    if (d->max_ejection_percent > 100) throw std::invalid_argument("outlier detection: max_ejection_percent must be in 0..100");
  }
}

}  // namespace

// DNS re-resolution runs as one coroutine on the executor given to start_resolving().
struct detail::UpstreamImpl::Resolving {
  explicit Resolving(asio::any_io_executor ex) : timer(ex), resolver(ex) {}
  asio::steady_timer timer;
  detail::tcp::resolver resolver;
  bool stopped = false;
};

namespace {

void publish(detail::UpstreamImpl& impl, std::vector<Upstream::Endpoint> eps) {
  impl.health->set_endpoints(eps);
  impl.snapshot.store(std::make_shared<const std::vector<Upstream::Endpoint>>(std::move(eps)));
  impl.generation.fetch_add(1, std::memory_order_release);
}

Upstream::Endpoint resolved(const detail::UpstreamImpl::Target& t, asio::ip::tcp::endpoint address) {
  return {address, t.label, t.host, t.weight};
}

asio::awaitable<void> resolve_loop(std::weak_ptr<Upstream> weak, std::shared_ptr<detail::UpstreamImpl::Resolving> r) {
  for (;;) {
    auto up = weak.lock();
    if (!up || r->stopped) co_return;
    detail::UpstreamImpl& impl = detail::UpstreamAccess::impl(*up);
    auto previous = impl.snapshot.load();
    std::vector<Upstream::Endpoint> next;
    for (const auto& t : impl.targets) {
      if (t.numeric) {
        next.push_back(resolved(t, {asio::ip::make_address(t.host), t.port}));
        continue;
      }
      auto [ec, results] = co_await r->resolver.async_resolve(t.host, std::to_string(t.port), detail::use_tuple);
      if (r->stopped) co_return;
      if (ec) {
        // Keep the last good addresses of this name while DNS is failing.
        for (const auto& e : *previous)
          if (e.label == t.label) next.push_back(e);
        continue;
      }
      for (const auto& entry : results) next.push_back(resolved(t, entry.endpoint()));
    }
    publish(impl, std::move(next));
    const auto interval = impl.options.resolve_interval;
    up.reset();  // do not keep the upstream alive while sleeping
    r->timer.expires_after(interval);
    auto [ec] = co_await r->timer.async_wait(detail::use_tuple);
    if (ec || r->stopped) co_return;
  }
}

}  // namespace

Upstream::Upstream(UpstreamOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  if (impl_->options.endpoints.empty()) throw std::invalid_argument("upstream has no endpoints");
  check_health_options(impl_->options);
  impl_->health = std::make_shared<detail::UpstreamHealth>(impl_->options.name, impl_->options.health);
  std::vector<Endpoint> numeric;
  for (const auto& e : impl_->options.endpoints) {
    impl_->targets.push_back(detail::parse_endpoint(e));
    auto& t = impl_->targets.back();
    if (const auto w = impl_->options.weights.find(e); w != impl_->options.weights.end()) t.weight = w->second;
    if (t.numeric) numeric.push_back(resolved(t, {asio::ip::make_address(t.host), t.port}));
  }
  for (const auto& [name, weight] : impl_->options.weights)
    if (std::find(impl_->options.endpoints.begin(), impl_->options.endpoints.end(), name) == impl_->options.endpoints.end())
      throw std::invalid_argument("a weight for \"" + name + "\", which is not one of the endpoints");
  impl_->health->set_endpoints(numeric);
  impl_->snapshot.store(std::make_shared<const std::vector<Endpoint>>(std::move(numeric)));
  if (impl_->options.tls) impl_->tls_context = detail::make_client_context(*impl_->options.tls);
  if (!impl_->options.load_balancer) impl_->options.load_balancer = round_robin();
  impl_->retry_policy = impl_->options.retry_policy
                            ? impl_->options.retry_policy
                            : std::make_shared<const ConnectRetryPolicy>(impl_->options.connect_retries);
  impl_->breaker = std::make_unique<detail::CircuitBreaker>(impl_->options.circuit_breaker);
}

std::shared_ptr<Upstream> Upstream::create(UpstreamOptions options) {
  return std::shared_ptr<Upstream>(new Upstream(std::move(options)));
}

Upstream::~Upstream() {
  stop_resolving();
  stop_health_checks();
}

const UpstreamOptions& Upstream::options() const noexcept { return impl_->options; }
const std::string& Upstream::name() const noexcept { return impl_->options.name; }

std::shared_ptr<const std::vector<Upstream::Endpoint>> Upstream::endpoints() const {
  return impl_->snapshot.load();
}
CircuitBreakerState Upstream::circuit_breaker() const noexcept { return impl_->breaker->state(); }

std::uint64_t Upstream::generation() const noexcept {
  return impl_->generation.load(std::memory_order_acquire);
}

std::vector<EndpointState> Upstream::endpoint_states() const { return impl_->health->states(); }

void Upstream::start_health_checks(asio::any_io_executor ex) {
  const UpstreamHealthOptions& h = impl_->options.health;
  if (!h.active && !h.outlier_detection) return;
  stop_health_checks();
  const std::string server_name = impl_->options.tls ? impl_->options.tls->server_name : std::string{};
  impl_->checker = std::make_shared<detail::HealthChecker>(std::move(ex), impl_->health, impl_->tls_context, server_name);
  impl_->checker->start();
}

void Upstream::stop_health_checks() {
  if (auto c = std::move(impl_->checker)) c->stop();
}

void Upstream::start_resolving(asio::any_io_executor ex) {
  bool any_name = false;
  for (const auto& t : impl_->targets) any_name |= !t.numeric;
  if (!any_name) return;
  stop_resolving();
  auto r = std::make_shared<Impl::Resolving>(ex);
  impl_->resolving = r;
  // The loop holds only a weak pointer: an upstream nobody uses any more is not kept alive by DNS.
  asio::co_spawn(ex, resolve_loop(weak_from_this(), r), asio::detached);
}

void Upstream::stop_resolving() {
  auto r = std::move(impl_->resolving);
  if (!r) return;
  asio::post(r->timer.get_executor(), [r] {
    r->stopped = true;
    r->timer.cancel();
    r->resolver.cancel();
  });
}

}  // namespace gatehouse
