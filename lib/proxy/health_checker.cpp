#include "proxy/health_checker.hpp"

#include <algorithm>
#include <charconv>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>

#include "net/stream.hpp"
#include "tls/tls_connect.hpp"

namespace gatehouse::detail {
namespace {

using steady = std::chrono::steady_clock;

// The status of "HTTP/1.x NNN ..." once the line is complete; 0 when malformed, nullopt when
// more bytes are needed.
std::optional<unsigned> status_of(std::string_view head) {
  const auto eol = head.find("\r\n");
  if (eol == std::string_view::npos) return std::nullopt;
  const std::string_view line = head.substr(0, eol);
  if (line.size() < 12 || !line.starts_with("HTTP/1.") || line[8] != ' ') return 0u;
  unsigned status = 0;
  const auto [end, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
  if (ec != std::errc{} || end != line.data() + 12 || status < 100 || status > 599) return 0u;
  return status;
}

}  // namespace

asio::awaitable<ProbeResult> probe_endpoint(asio::any_io_executor ex, UpstreamEndpoint endpoint,
                                            HealthCheckOptions options, asio::ssl::context* tls,
                                            std::string tls_server_name, ProbeRegistry* registry) {
  ProbeResult result;
  const auto deadline = steady::now() + options.timeout;
  // Shared with the deadline timer's handler, which may run after this frame is gone.
  auto stream = std::make_shared<Stream>(tls ? Stream(tcp::socket(ex), *tls) : Stream(tcp::socket(ex)));
  auto timed_out = std::make_shared<bool>(false);
  asio::steady_timer timer(ex);
  timer.expires_at(deadline);
  timer.async_wait([stream, timed_out](asio::error_code ec) {
    if (ec) return;
    *timed_out = true;
    stream->close();
  });
  if (registry) registry->live.push_back(stream);
  const std::string_view host =
      tls && !tls_server_name.empty() ? std::string_view(tls_server_name) : std::string_view(endpoint.host);
  const ConnectError err =
      co_await connect_stream(*stream, std::span<const tcp::endpoint>(&endpoint.address, 1), host, deadline);
  std::optional<unsigned> status;
  asio::error_code wec;
  if (err.ok() && options.kind == HealthCheckOptions::Kind::http) {
    const std::string request = "GET " + options.path + " HTTP/1.1\r\nHost: " +
                                (options.host.empty() ? endpoint.label : options.host) +
                                "\r\nUser-Agent: gatehouse-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n";
    std::tie(wec, std::ignore) = co_await stream->write(asio::buffer(request));
    std::string head;
    char buf[512];
    while (!wec && !status && head.size() < 4096) {
      auto [rec, n] = co_await stream->read_some(asio::buffer(buf));
      if (rec || n == 0) break;
      head.append(buf, n);
      status = status_of(head);
    }
  }
  timer.cancel();
  stream->close();
  if (registry) std::erase(registry->live, stream);
  if (!err.ok()) {
    result.error = *timed_out ? "timed out" : err.reason();
    co_return result;
  }
  if (options.kind == HealthCheckOptions::Kind::tcp) {
    result.passed = true;
    co_return result;
  }
  if (!status || *status == 0) {
    result.error = *timed_out ? "timed out"
                   : wec      ? "write failed: " + wec.message()
                   : status   ? "not an HTTP response"
                              : "closed before a status line";
    co_return result;
  }
  result.status = *status;
  result.passed = std::any_of(options.expected_statuses.begin(), options.expected_statuses.end(),
                              [&](const auto& range) { return *status >= range.first && *status <= range.second; });
  if (!result.passed) result.error = "status " + std::to_string(*status);
  co_return result;
}

HealthChecker::HealthChecker(asio::any_io_executor ex, std::shared_ptr<UpstreamHealth> health,
                             std::shared_ptr<asio::ssl::context> tls, std::string tls_server_name)
    : ex_(std::move(ex)),
      health_(std::move(health)),
      tls_(std::move(tls)),
      tls_server_name_(std::move(tls_server_name)),
      timer_(ex_),
      rng_(std::random_device{}()) {}

void HealthChecker::start() {
  asio::co_spawn(ex_, [self = shared_from_this()]() { return self->loop(); }, asio::detached);
}

void HealthChecker::stop() {
  asio::post(ex_, [self = shared_from_this()] {
    self->stopped_ = true;
    self->timer_.cancel();
    for (const auto& stream : self->probes_.live) stream->close();  // probes in flight end now
  });
}

std::chrono::steady_clock::duration HealthChecker::next_interval() {
  const HealthCheckOptions& o = *health_->options().active;
  const double jitter = std::clamp(o.jitter, 0.0, 0.5);
  const double u = std::uniform_real_distribution<double>(-jitter, jitter)(rng_);
  return std::chrono::duration_cast<steady::duration>(o.interval * (1.0 + u));
}

asio::awaitable<void> HealthChecker::loop() {
  auto self = shared_from_this();
  const auto& options = health_->options();
  // Ended ejections are noticed at least this often (requests notice them at once).
  const steady::duration sweep = std::chrono::seconds(1);
  steady::time_point next_round = steady::now();
  while (!stopped_) {
    health_->return_expired(health_->now());
    if (options.active && steady::now() >= next_round) {
      for (const auto& e : health_->set()->health) {
        if (e->check_running) continue;  // still waiting for the last one
        e->check_running = true;
        // The function object (and the checker it holds) lives until the check ends.
        asio::co_spawn(ex_, [self, e] { return self->check(e); }, asio::detached);
      }
      next_round = steady::now() + next_interval();
    }
    const steady::time_point wake = options.active ? std::min(next_round, steady::now() + sweep) : steady::now() + sweep;
    timer_.expires_at(wake);
    auto [ec] = co_await timer_.async_wait(use_tuple);
    (void)ec;
  }
}

asio::awaitable<void> HealthChecker::check(std::shared_ptr<EndpointHealth> e) {
  const ProbeResult r = co_await probe_endpoint(ex_, e->endpoint, *health_->options().active, tls_.get(), tls_server_name_, &probes_);
  e->check_running = false;
  if (!stopped_) health_->record_check(*e, r.passed);
}

}  // namespace gatehouse::detail
