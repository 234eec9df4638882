// The command pipeline. Workers hand calls to the client's I/O thread through a bounded lock-free
// ring; the I/O thread writes every call it finds back to back on the one connection and matches
// replies to calls in order (Redis answers a connection's commands in the order sent).
//
// Why one connection on its own thread rather than one per worker: a gateway's instances times
// its workers would otherwise multiply Redis's connection count, each with its own reconnect,
// Sentinel and script state; with one, the calls of all workers share each write and each read
// (pipelining comes for free under load), and a worker only pays a push and, when the I/O thread
// is idle, one post.
#include <algorithm>
#include <random>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>

#include "redis/redis_client_impl.hpp"
#include "tls/tls_context.hpp"
#include "util/log.hpp"

namespace gatehouse {

using detail::RedisClientImpl;
using detail::RedisCall;
using clock = std::chrono::steady_clock;

namespace detail {

namespace {
void log_redis(LogLevel level, const RedisOptions& o, const std::string& message) {
  log(nullptr, level, "redis " + o.name + ": " + message, {{"redis", o.name}});
}
}  // namespace

std::chrono::milliseconds redis_backoff(const RedisOptions& o, unsigned failures) {
  auto d = o.reconnect_min;
  for (unsigned i = 1; i < failures && d < o.reconnect_max; ++i) d *= 2;
  d = std::min(d, o.reconnect_max);
  thread_local std::minstd_rand rng{std::random_device{}()};
  const auto jitter = d.count() / 4;
  if (jitter > 0) d -= std::chrono::milliseconds(static_cast<long>(rng() % static_cast<unsigned long>(jitter + 1)));
  return std::max(d, std::chrono::milliseconds(1));
}

RedisCall::RedisCall(RedisClientImpl* o, std::string e, std::unique_ptr<RedisCompletion> c, bool count)
    : owner(o), encoded(std::move(e)), completion(std::move(c)), counted(count) {}

RedisCall::~RedisCall() {
  if (scheduled()) owner->deadlines_.cancel(*this);
  if (!done && completion) complete(make_error_code(RedisErrc::shutting_down), {});
  if (counted) owner->outstanding.fetch_sub(1, std::memory_order_relaxed);
}

void RedisCall::expire() noexcept {
  owner->counters.timeouts.fetch_add(1, std::memory_order_relaxed);
  complete(make_error_code(RedisErrc::timed_out), {});
}

void RedisCall::complete(std::error_code ec, RedisReply reply) noexcept {
  if (done) return;
  done = true;
  if (scheduled()) owner->deadlines_.cancel(*this);
  if (!completion) return;
  try {
    completion->complete(ec, std::move(reply));
  } catch (...) {
    // Out of memory while posting: the handler is lost, as it would be with any Asio post.
  }
}

RedisClientImpl::RedisClientImpl(RedisOptions o)
    : options(std::move(o)),
      io(std::make_unique<IoThread>()),
      ring_(std::max<std::size_t>(options.max_pending, 2)),
      deadlines_(io->executor()),
      backoff_timer_(io->executor()),
      stall_timer_(io->executor()) {
  if (options.sentinel.addresses.empty()) {
    fixed_target = RedisTarget::parse(options.address);
  } else {
    if (options.sentinel.master_name.empty())
      throw std::invalid_argument("redis " + options.name + ": sentinel.master_name is required");
    for (const auto& a : options.sentinel.addresses) (void)RedisTarget::parse(a);
  }
  if (options.tls) tls = make_client_context(*options.tls);
  if (options.max_pending == 0) options.max_pending = 1;
}

void RedisClientImpl::start() {
  if (!options.sentinel.addresses.empty()) {
    sentinel_watch_ = std::make_shared<RedisSubscriberLoop>(
        *this, true,
        [this](bool, const std::string&, const std::string&, const std::string& message) {
          if (auto to = parse_switch_master(message, options.sentinel.master_name)) on_switch_master(*to);
        },
        nullptr);
    asio::post(io->executor(), [w = sentinel_watch_] { w->add({"+switch-master"}); });
    sentinel_watch_->start();
  }
  asio::co_spawn(io->executor(), connect_loop(), asio::detached);
  asio::co_spawn(io->executor(), stall_watch(), asio::detached);
}

RedisClientImpl::~RedisClientImpl() {
  {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    asio::post(io->executor(), [&] {
      shutdown();
      std::lock_guard lock(m);
      done = true;
      cv.notify_all();
    });
    std::unique_lock lock(m);
    cv.wait_for(lock, std::chrono::seconds(2), [&] { return done; });
  }
  io->join();
  // Calls that slipped into the ring while shutting down: their destructor answers them.
  std::unique_ptr<RedisCall> c;
  while (ring_.try_pop(c)) c.reset();
}

void RedisClientImpl::shutdown() noexcept {
  stopping.store(true);
  set_state(State::down);
  if (link_) link_->close();
  backoff_timer_.cancel();
  stall_timer_.cancel();
  if (sentinel_watch_) sentinel_watch_->stop();
  for (auto& w : loops_)
    if (auto l = w.lock()) l->stop();
  std::unique_ptr<RedisCall> c;
  while (ring_.try_pop(c)) c->complete(make_error_code(RedisErrc::shutting_down), {}), c.reset();
  fail_all(waiting_, RedisErrc::shutting_down);
  fail_all(inflight_, RedisErrc::shutting_down);
}

void RedisClientImpl::set_state(State s) {
  state.store(s, std::memory_order_release);
  if (s == State::ready) {
    std::lock_guard lock(connected_mutex);
    connected_cv.notify_all();
  }
}

void RedisClientImpl::submit(std::string encoded, const RedisScript* script, std::chrono::milliseconds timeout,
                             std::unique_ptr<RedisCompletion> completion) noexcept {
  auto fail = [&](RedisErrc why) {
    if (why != RedisErrc::shutting_down) counters.failed_fast.fetch_add(1, std::memory_order_relaxed);
    try {
      completion->complete(make_error_code(why), {});
    } catch (...) {
    }
  };
  if (stopping.load(std::memory_order_acquire)) return fail(RedisErrc::shutting_down);
  // Redis is known to be away: answer now rather than make the caller wait for its deadline.
  if (state.load(std::memory_order_acquire) == State::down) return fail(RedisErrc::unavailable);
  if (outstanding.fetch_add(1, std::memory_order_relaxed) >= options.max_pending) {
    outstanding.fetch_sub(1, std::memory_order_relaxed);
    return fail(RedisErrc::overloaded);
  }
  std::unique_ptr<RedisCall> call;
  try {
    call = std::make_unique<RedisCall>(this, std::move(encoded), std::move(completion), true);
    if (script) call->script = *script;
  } catch (...) {
    outstanding.fetch_sub(1, std::memory_order_relaxed);
    return;  // out of memory: the completion went with the failed construction
  }
  call->deadline = clock::now() + timeout;
  counters.calls.fetch_add(1, std::memory_order_relaxed);
  if (!ring_.try_push(call)) {
    // Cannot happen while outstanding counts every call in the ring; kept as a guard.
    call->complete(make_error_code(RedisErrc::overloaded), {});
    return;
  }
  if (!drain_posted_.exchange(true, std::memory_order_acq_rel)) {
    try {
      asio::post(io->executor(), [this] { drain(); });
    } catch (...) {
      drain_posted_.store(false);
    }
  }
}

void RedisClientImpl::drain() noexcept {
  // Reset before popping (acq_rel pairs with a producer's exchange): a call pushed after the last
  // pop below finds the flag clear and posts again.
  drain_posted_.exchange(false, std::memory_order_acq_rel);
  std::unique_ptr<RedisCall> c;
  while (ring_.try_pop(c)) take(std::move(c));
  try {
    if (link_) link_->flush();
  } catch (...) {
    if (link_) link_->close();
  }
}

void RedisClientImpl::take(std::unique_ptr<RedisCall> call) noexcept {
  if (stopping.load()) return call->complete(make_error_code(RedisErrc::shutting_down), {});
  try {
    if (call->script && scripts_.size() < 64) scripts_.emplace(call->script->sha1(), *call->script);
    if (clock::now() >= call->deadline) return call->expire();
    deadlines_.schedule(*call, call->deadline);
    switch (state.load(std::memory_order_relaxed)) {
      case State::ready: send(std::move(call)); return;
      case State::connecting: waiting_.push_back(std::move(call)); return;
      case State::down:
        counters.failed_fast.fetch_add(1, std::memory_order_relaxed);
        return call->complete(make_error_code(RedisErrc::unavailable), {});
    }
  } catch (...) {
    if (call) call->complete(make_error_code(RedisErrc::overloaded), {});
  }
}

void RedisClientImpl::send(std::unique_ptr<RedisCall> call) {
  call->sent_at = clock::now();
  link_->append(call->encoded);
  inflight_.push_back(std::move(call));
}

void RedisClientImpl::fail_all(std::deque<std::unique_ptr<RedisCall>>& calls, RedisErrc why) noexcept {
  for (auto& c : calls) {
    // Each failure is counted under its reason (a call that already timed out is not failed twice).
    if (!c->done && c->completion) {
      if (why == RedisErrc::connection_lost) counters.connection_lost.fetch_add(1, std::memory_order_relaxed);
      if (why == RedisErrc::unavailable) counters.failed_fast.fetch_add(1, std::memory_order_relaxed);
    }
    c->complete(make_error_code(why), {});
  }
  calls.clear();
}

void RedisClientImpl::on_reply(RedisReply reply) {
  if (inflight_.empty()) {
    log_redis(LogLevel::error, options, "reply with no command waiting for it; reconnecting");
    link_->close();
    return;
  }
  auto call = std::move(inflight_.front());
  inflight_.pop_front();
  if (call->script && !call->reloaded && !call->done && reply.is_error() && reply.str.starts_with("NOSCRIPT")) {
    // The server lost its script cache (restart, failover, SCRIPT FLUSH): load it and run again,
    // pipelined, still under the call's deadline.
    call->reloaded = true;
    counters.script_loads.fetch_add(1, std::memory_order_relaxed);
    send(std::make_unique<RedisCall>(this, RedisCommand{"SCRIPT", "LOAD", call->script->source()}.encoded(), nullptr,
                                     false));
    send(std::move(call));
    return;
  }
  if (!call->completion || call->done) return;
  counters.replies.fetch_add(1, std::memory_order_relaxed);
  call->complete({}, std::move(reply));
}

asio::awaitable<std::optional<RedisTarget>> RedisClientImpl::locate_primary() {
  if (fixed_target) co_return fixed_target;
  const auto& s = options.sentinel;
  for (std::size_t i = 0; i < s.addresses.size() && !stopping.load(); ++i) {
    const std::size_t index = (sentinel_index_ + i) % s.addresses.size();
    const auto target = RedisTarget::parse(s.addresses[index]);
    std::vector<RedisCommand> ask;
    if (auto auth = auth_command(s.username, s.password)) ask.push_back(std::move(*auth));
    ask.push_back(RedisCommand{"SENTINEL", "get-master-addr-by-name", s.master_name});
    std::vector<RedisReply> replies;
    std::string error;
    auto link = co_await open_redis_link(io->executor(), tls.get(), target, ask,
                                         clock::now() + options.connect_timeout, replies, error);
    if (!link) {
      log_redis(LogLevel::debug, options, "sentinel " + target.text() + ": " + error);
      continue;
    }
    link->close();
    if (auto primary = parse_master_addr(replies.back())) {
      sentinel_index_ = index;
      co_return primary;
    }
    log_redis(LogLevel::warning, options,
              "sentinel " + target.text() + " does not know the primary \"" + s.master_name + "\"");
  }
  co_return std::nullopt;
}

std::vector<RedisCommand> RedisClientImpl::handshake(bool for_commands) const {
  std::vector<RedisCommand> h;
  if (auto auth = auth_command(options.username, options.password)) h.push_back(std::move(*auth));
  if (!options.sentinel.addresses.empty()) h.push_back(RedisCommand{"ROLE"});
  // Pub/sub ignores the database, but a subscriber on a db the server refuses must fail like the
  // command connection does rather than look healthy.
  if (options.db != 0) h.push_back(RedisCommand{"SELECT"}.arg(static_cast<std::int64_t>(options.db)));
  if (for_commands) {
    for (const auto& [sha, script] : scripts_) h.push_back(RedisCommand{"SCRIPT", "LOAD", script.source()});
  }
  return h;
}

asio::awaitable<std::shared_ptr<RedisLink>> RedisClientImpl::open_primary(bool for_commands, std::string& error) {
  auto target = co_await locate_primary();
  if (!target) {
    error = "no sentinel answered with the primary of \"" + options.sentinel.master_name + "\"";
    co_return nullptr;
  }
  {
    std::lock_guard lock(primary_mutex);
    primary_text = target->text();
  }
  const auto commands = handshake(for_commands);
  std::vector<RedisReply> replies;
  auto link = co_await open_redis_link(io->executor(), tls.get(), *target, commands,
                                       clock::now() + options.connect_timeout, replies, error);
  if (!link) {
    error = target->text() + ": " + error;
    co_return nullptr;
  }
  if (!options.sentinel.addresses.empty()) {
    // A sentinel's answer may be stale (a failover in progress): only a primary takes commands.
    const auto& role = replies[options.password.empty() ? 0 : 1];
    if (!role.is_array() || role.elements.empty() || role.elements[0].str != "master") {
      error = target->text() + " is not a primary (failover in progress?)";
      link->close();
      co_return nullptr;
    }
  }
  if (for_commands) primary_ = target;
  co_return link;
}

asio::awaitable<void> RedisClientImpl::connect_loop() {
  bool warned = false;
  while (!stopping.load()) {
    set_state(State::connecting);
    std::string error;
    auto link = co_await open_primary(true, error);
    if (stopping.load()) {
      if (link) link->close();
      break;
    }
    if (!link) {
      ++failures_;
      // One warning per outage, not one per attempt.
      log_redis(warned ? LogLevel::debug : LogLevel::warning, options, "cannot connect: " + error);
      warned = true;
      set_state(State::down);
      fail_all(waiting_, RedisErrc::unavailable);
      backoff_timer_.expires_after(redis_backoff(options, failures_));
      co_await backoff_timer_.async_wait(detail::use_tuple);
      continue;
    }
    if (warned || failures_ > 0) log_redis(LogLevel::info, options, "connected to " + primary_->text());
    warned = false;
    failures_ = 0;
    counters.connects.fetch_add(1, std::memory_order_relaxed);
    link_ = link;
    set_state(State::ready);
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& c : waiting)
      if (!c->done) send(std::move(c));
    link_->flush();
    co_await read_loop(link);
    link_.reset();
    fail_all(inflight_, RedisErrc::connection_lost);
    if (!stopping.load()) log_redis(LogLevel::warning, options, "connection lost; reconnecting");
    // Calls made meanwhile wait (until their deadline) for this immediate second attempt; when
    // it fails they fail fast until the server is back.
  }
}

asio::awaitable<void> RedisClientImpl::read_loop(std::shared_ptr<RedisLink> link) {
  for (;;) {
    auto [ec, n] = co_await link->stream.read_some(asio::buffer(link->read_buffer));
    if (ec || link->closed || !link->reader.feed(link->read_buffer.data(), n)) break;
    bool error = false;
    while (auto reply = link->reader.next(error)) on_reply(std::move(*reply));
    if (error) {
      log_redis(LogLevel::error, options, "protocol error in a reply; reconnecting");
      break;
    }
    if (link->closed) break;
    link->flush();
  }
  link->close();
}

asio::awaitable<void> RedisClientImpl::stall_watch() {
  const auto tick = std::clamp(options.stall_timeout / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(500));
  while (!stopping.load()) {
    stall_timer_.expires_after(tick);
    co_await stall_timer_.async_wait(detail::use_tuple);
    if (stopping.load()) break;
    if (link_ && !inflight_.empty() && clock::now() - inflight_.front()->sent_at > options.stall_timeout) {
      log_redis(LogLevel::warning, options, "no reply for " + std::to_string(options.stall_timeout.count()) +
                                                " ms; dropping the connection");
      link_->close();
    }
  }
}

void RedisClientImpl::on_switch_master(const RedisTarget& to) {
  log_redis(LogLevel::info, options, "sentinel: primary of \"" + options.sentinel.master_name + "\" is now " + to.text());
  if (primary_ && *primary_ == to && link_) return;
  if (link_) link_->close();
  failures_ = 0;
  backoff_timer_.cancel();
  for (auto& w : loops_)
    if (auto l = w.lock()) l->reconnect();
}

void RedisClientImpl::add_loop(const std::shared_ptr<RedisSubscriberLoop>& loop) {
  std::erase_if(loops_, [](const auto& w) { return w.expired(); });
  loops_.push_back(loop);
}

}  // namespace detail

RedisClient::RedisClient(RedisOptions options) : impl_(std::make_unique<RedisClientImpl>(std::move(options))) {
  impl_->start();
}

std::shared_ptr<RedisClient> RedisClient::create(RedisOptions options) {
  return std::shared_ptr<RedisClient>(new RedisClient(std::move(options)));
}

RedisClient::~RedisClient() = default;

const RedisOptions& RedisClient::options() const noexcept { return impl_->options; }

asio::any_io_executor RedisClient::executor() const noexcept { return impl_->io->executor(); }

bool RedisClient::connected() const noexcept { return impl_->state.load() == RedisClientImpl::State::ready; }

bool RedisClient::wait_connected(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->connected_mutex);
  return impl_->connected_cv.wait_for(lock, timeout, [this] { return connected(); });
}

RedisClientStats RedisClient::stats() const {
  const auto& c = impl_->counters;
  RedisClientStats s;
  s.connected = connected();
  s.calls = c.calls.load();
  s.replies = c.replies.load();
  s.timeouts = c.timeouts.load();
  s.failed_fast = c.failed_fast.load();
  s.connection_lost = c.connection_lost.load();
  s.connects = c.connects.load();
  s.script_loads = c.script_loads.load();
  s.pending = impl_->outstanding.load();
  std::lock_guard lock(impl_->primary_mutex);
  s.primary = impl_->primary_text;
  return s;
}

void RedisClient::submit(RedisCommand cmd, const RedisScript* script, std::chrono::milliseconds timeout,
                         std::unique_ptr<detail::RedisCompletion> completion) noexcept {
  std::string encoded;
  try {
    encoded = cmd.encoded();
  } catch (...) {
    return;
  }
  impl_->submit(std::move(encoded), script, timeout, std::move(completion));
}

}  // namespace gatehouse
