#include "gatehouse/middleware/ip_filter.hpp"

#include <optional>
#include <stdexcept>
#include <utility>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "core/exchange_access.hpp"
#include "gatehouse/security_event.hpp"
#include "gatehouse/security_events.hpp"
#include "middleware/ip_filter_listener.hpp"
#include "net/address_list.hpp"
#include "net/io_thread.hpp"
#include "observe/gateway_metrics.hpp"
#include "util/log.hpp"

namespace gatehouse {
namespace {

// An AddressList is neither copied nor moved (readers hold pointers into it): built in place.
void make_list(std::optional<detail::AddressList>& into, const std::vector<std::string>& blocks,
               const std::string& file, std::string_view which) {
  if (blocks.empty() && file.empty()) return;
  std::vector<detail::Cidr> parsed;
  parsed.reserve(blocks.size());
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    auto c = detail::Cidr::parse(blocks[i]);
    if (!c)
      throw std::invalid_argument("IpFilter: " + std::string(which) + "[" + std::to_string(i) +
                                  "]: invalid CIDR block \"" + blocks[i] + "\"");
    parsed.push_back(*c);
  }
  into.emplace(std::move(parsed), file);
}

std::string_view reason_of(IpVerdict v) noexcept {
  return v == IpVerdict::deny_listed ? "address in the deny list" : "address not in the allow list";
}

}  // namespace

std::string_view to_string(IpVerdict v) noexcept {
  switch (v) {
    case IpVerdict::allowed: return "allowed";
    case IpVerdict::allow_listed: return "allow_listed";
    case IpVerdict::deny_listed: return "deny_listed";
    case IpVerdict::not_allow_listed: return "not_allow_listed";
  }
  return "allowed";
}

struct IpFilter::State {
  IpFilterOptions options;
  std::optional<detail::AddressList> allow, deny;

  bool refresh() {
    bool changed = false;
    for (auto* list : {&allow, &deny}) {
      if (!*list) continue;
      std::string error;
      switch ((*list)->refresh(&error)) {
        case detail::AddressList::Refresh::unchanged: break;
        case detail::AddressList::Refresh::reloaded:
          changed = true;
          detail::log(nullptr, LogLevel::info, "ip filter: address list reloaded",
                      {{"filter", options.name}, {"file", (*list)->file()}, {"blocks", std::to_string((*list)->size())}});
          break;
        case detail::AddressList::Refresh::failed:
          detail::log(nullptr, LogLevel::error, "ip filter: address list not reloaded, the previous one stays",
                      {{"filter", options.name}, {"error", error}});
          break;
      }
    }
    return changed;
  }

  // The periodic check's timer, on the background thread. The filter's destructor cancels it there,
  // so that the thread is never kept waiting for the next tick.
  struct Watch {
    explicit Watch(asio::any_io_executor ex) : timer(std::move(ex)) {}
    asio::steady_timer timer;
    bool stopped = false;  // touched on the background thread only
  };
  std::shared_ptr<Watch> watch;

  // Off the workers: on the library's background thread, until the filter is gone.
  static asio::awaitable<void> run_watch(std::shared_ptr<Watch> w, std::weak_ptr<State> weak,
                                         std::chrono::milliseconds every) {
    for (;;) {
      w->timer.expires_after(every);
      asio::error_code ec;
      co_await w->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (w->stopped) co_return;
      auto state = weak.lock();
      if (!state) co_return;
      try {
        state->refresh();
      } catch (const std::exception&) {
        // Out of memory building a set: the current one stays; the next check tries again.
      }
    }
  }
};

IpFilter::IpFilter(IpFilterOptions options) : state_(std::make_shared<State>()) {
  if (options.file_check_interval.count() < 0) throw std::invalid_argument("IpFilter: negative file_check_interval");
  make_list(state_->allow, options.allow, options.allow_file, "allow");
  make_list(state_->deny, options.deny, options.deny_file, "deny");
  if (!state_->allow && !state_->deny) throw std::invalid_argument("IpFilter: needs an allow or a deny list");
  state_->options = std::move(options);
  const auto& o = state_->options;
  if ((!o.allow_file.empty() || !o.deny_file.empty()) && o.file_check_interval.count() > 0) {
    auto io = detail::IoThread::shared();
    state_->watch = std::make_shared<State::Watch>(io->executor());
    asio::co_spawn(io->executor(), State::run_watch(state_->watch, state_, o.file_check_interval), asio::detached);
    io_ = std::move(io);
  }
}

IpFilter::~IpFilter() {
  if (!state_->watch) return;
  try {
    asio::post(state_->watch->timer.get_executor(), [w = state_->watch] {
      w->stopped = true;
      w->timer.cancel();
    });
  } catch (...) {
    // Out of memory: the check ends at its next tick instead, when it finds the filter gone.
  }
  // The timer must go before the background thread's io_context, which io_ may be the last to hold
  // (members are destroyed after this body): from now on only that io_context's queue owns it.
  state_->watch.reset();
}

IpVerdict IpFilter::check(const asio::ip::address& addr) const noexcept {
  const State& s = *state_;
  if (s.deny && s.deny->contains(addr)) return IpVerdict::deny_listed;
  if (!s.allow) return IpVerdict::allowed;
  return s.allow->contains(addr) ? IpVerdict::allow_listed : IpVerdict::not_allow_listed;
}

Flow IpFilter::on_request(Exchange& ex) const {
  const auto& o = state_->options;
  const asio::ip::address& addr = o.address == IpFilterAddress::client ? ex.client_address() : ex.peer().address();
  const IpVerdict verdict = check(addr);
  detail::count_ip_filter(detail::ExchangeAccess::metrics(ex), o.name, to_string(verdict));
  if (permits(verdict)) return Flow::next();
  if (ex.security_events()) {
    SecurityEvent e;
    e.kind = SecurityEventKind::ip_filtered;
    e.action = "ip-filter-denied";
    e.reason = reason_of(verdict);
    e.rule_name = o.name;
    e.http_status = 403;
    e.label("verdict", std::string(to_string(verdict)))
        .label("stage", "route")
        .label("address", o.address == IpFilterAddress::client ? "client" : "peer");
    ex.report(std::move(e));
  }
  return Flow::respond(Status::forbidden);
}

bool IpFilter::refresh_files() { return state_->refresh(); }
std::size_t IpFilter::allow_size() const noexcept { return state_->allow ? state_->allow->size() : 0; }
std::size_t IpFilter::deny_size() const noexcept { return state_->deny ? state_->deny->size() : 0; }
const IpFilterOptions& IpFilter::options() const noexcept { return state_->options; }

namespace detail {

bool admit_connection(const IpFilter& filter, const asio::ip::tcp::endpoint& peer, std::string_view listener,
                      WorkerMetrics* metrics, SecurityEvents* events) noexcept {
  const IpVerdict verdict = filter.check(peer.address());
  count_ip_filter(metrics, filter.options().name, to_string(verdict));
  if (permits(verdict)) return true;
  if (events) {
    try {
      SecurityEvent e;
      e.kind = SecurityEventKind::ip_filtered;
      e.action = "ip-filter-connection-closed";
      e.reason = reason_of(verdict);
      e.rule_name = filter.options().name;
      e.peer = peer;
      e.client_ip = peer.address();
      e.label("verdict", std::string(to_string(verdict))).label("stage", "listener");
      if (!listener.empty()) e.label("listener", std::string(listener));
      events->report(std::move(e));
    } catch (...) {
      // Out of memory building the event: the connection is refused all the same.
    }
  }
  return false;
}

}  // namespace detail
}  // namespace gatehouse
