#include "admin/admin_server.hpp"

#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/address.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include "admin/bearer_token_check.hpp"
#include "net/stream.hpp"

namespace gatehouse::detail {
namespace {

using namespace std::chrono_literals;

// Probes and scrapes are small requests on short connections: tight limits, a short drain.
GatewayOptions admin_gateway_options() {
  GatewayOptions o;
  o.workers = 1;
  o.drain_timeout = 2s;
  o.limits.max_header_bytes = 16 * 1024;
  o.limits.max_body_bytes = 64 * 1024;
  o.limits.header_timeout = 5s;
  o.limits.idle_timeout = 30s;
  o.limits.request_timeout = 10s;
  o.limits.send_timeout = 30s;
  o.trace_context.enabled = false;  // nothing goes upstream from the admin API
  return o;
}

void check_options(const AdminOptions& o) {
  asio::error_code ec;
  const auto address = asio::ip::make_address(o.address, ec);
  if (ec) throw std::invalid_argument("admin: invalid address \"" + o.address + "\" (an IP address is needed)");
  if (!o.token.empty())
    if (const char* problem = admin_token_problem(o.token)) throw std::invalid_argument(std::string("admin: ") + problem);
  const bool client_certs = o.tls && !o.tls->client_ca_file.empty();
  // Fail closed: the admin API can stop the gateway and shows its configuration.
  if (!address.is_loopback() && o.token.empty() && !client_certs)
    throw std::invalid_argument("admin: the admin listener on " + o.address +
                                " is not on loopback: it needs a token or TLS with client certificates "
                                "(client_ca_file)");
}

asio::awaitable<void> stop_after_drain(std::weak_ptr<bool> alive, AdminServer* admin, std::function<bool()> drained,
                                       std::chrono::steady_clock::time_point deadline) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    if (alive.expired()) co_return;  // the gateway is gone, and `drained` with it
    if (drained() || std::chrono::steady_clock::now() >= deadline) {
      admin->stop();
      co_return;
    }
    timer.expires_after(20ms);
    co_await timer.async_wait(use_tuple);
  }
}

}  // namespace

void AdminServer::set_upstreams(std::vector<std::shared_ptr<Upstream>> upstreams) {
  state_->upstreams.store(std::make_shared<const std::vector<std::shared_ptr<Upstream>>>(std::move(upstreams)));
}

AdminServer::AdminServer(AdminOptions options, std::vector<std::shared_ptr<Upstream>> upstreams,
                         std::function<void()> stop_gateway, std::optional<asio::any_io_executor> host)
    : state_(std::make_shared<AdminState>()), host_(std::move(host)) {
  check_options(options);
  set_upstreams(std::move(upstreams));
  state_->stop_gateway = std::move(stop_gateway);
  server_ = host_ ? std::make_unique<Gateway>(*host_, admin_gateway_options())
                  : std::make_unique<Gateway>(admin_gateway_options());
  server_->listen({.address = options.address, .port = options.port, .tls = options.tls, .name = "admin"});
  // The token check is the admin gateway's whole global chain: it runs before every route, and
  // before the 404 of a path that is not an endpoint, so nothing answers without the token.
  if (!options.token.empty()) server_->use(std::make_shared<const BearerTokenCheck>(options.token));
  options.token.clear();  // the check keeps only a digest
  state_->options = std::move(options);
  for (Route& r : admin_routes(state_)) server_->route(std::move(r));
}

AdminServer::~AdminServer() {
  alive_.reset();
  server_->stop();
  server_->wait();
}

void AdminServer::start() {
  try {
    server_->start();
  } catch (const std::system_error& e) {
    const AdminOptions& o = state_->options;
    throw std::system_error(e.code(), "admin API: cannot listen on " + o.address + ":" + std::to_string(o.port));
  }
}

void AdminServer::set_readiness(Readiness r) noexcept { state_->readiness.store(r, std::memory_order_release); }

void AdminServer::set_bans(std::shared_ptr<BanList> bans) noexcept { state_->bans.store(std::move(bans)); }

void AdminServer::stop() { server_->stop(); }

void AdminServer::wait() { server_->wait(); }

void AdminServer::stop_when(std::function<bool()> drained, std::chrono::steady_clock::time_point deadline) {
  if (!host_) return;
  asio::co_spawn(*host_, stop_after_drain(alive_, this, std::move(drained), deadline), asio::detached);
}

asio::ip::tcp::endpoint AdminServer::endpoint() const {
  const auto bound = server_->local_endpoints();
  return bound.empty() ? asio::ip::tcp::endpoint{} : bound.front();
}

}  // namespace gatehouse::detail
