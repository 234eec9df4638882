// BanList: the facade over the scores and bans (ban_state.cpp), the Redis sharing
// (ban_sharing.cpp), a one-second expiry tick, the hot-path check and the metrics.
#include <unistd.h>

#include <asio/bind_executor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "bans/ban_state.hpp"
#include "gatehouse/security_event_sinks.hpp"
#include "net/io_thread.hpp"

namespace gatehouse {

namespace {

// The SecurityEvents thread calls write(): scoring never runs on a worker.
class BanSink final : public EventSink {
 public:
  explicit BanSink(std::weak_ptr<BanList::Impl> list) : list_(std::move(list)) {}
  void write(const SecurityEvent& event, std::string_view) override {
    if (auto l = list_.lock()) l->observe(event);
  }

 private:
  std::weak_ptr<BanList::Impl> list_;
};

struct Ticker {
  explicit Ticker(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
};

void tick(std::shared_ptr<Ticker> t, std::weak_ptr<BanList::Impl> weak) {
  t->timer.expires_after(std::chrono::seconds(1));
  t->timer.async_wait([t, weak](const asio::error_code& ec) {
    if (ec) return;
    auto list = weak.lock();
    if (!list) return;
    list->expire();
    list.reset();
    tick(t, weak);
  });
}

// Loading the shared bans after each (re)subscription, again with backoff until it works: the
// subscription and the command connection reconnect on their own schedules, so the first load
// after a gap can fail at once (`unavailable`), and the bans published in the gap would then stay
// unknown here. A newer subscription's load supersedes an older one's retries.
struct Resync {
  Resync(const asio::any_io_executor& ex, std::weak_ptr<RedisSubscriber> s) : timer(ex), subscriber(std::move(s)) {}
  asio::steady_timer timer;
  std::weak_ptr<RedisSubscriber> subscriber;
  std::uint64_t generation = 0;  // the timer's executor only
};

void resync(std::shared_ptr<Resync> r, std::weak_ptr<BanList::Impl> weak, std::uint64_t generation, unsigned attempt) {
  auto list = weak.lock();
  if (!list) return;
  list->resync([r, weak, generation, attempt](bool ok) {
    if (ok) return;
    asio::post(r->timer.get_executor(), [r, weak, generation, attempt] {
      auto sub = r->subscriber.lock();
      // Unsubscribed: the next subscription starts a load of its own.
      if (generation != r->generation || !sub || !sub->subscribed()) return;
      const auto delay = std::chrono::milliseconds(100 << std::min(attempt, 4u));  // 0.1 s .. 1.6 s
      r->timer.expires_after(delay);
      r->timer.async_wait([r, weak, generation, attempt](const asio::error_code& ec) {
        if (!ec && generation == r->generation) resync(r, weak, generation, attempt + 1);
      });
    });
  });
}

std::string default_instance() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

}  // namespace

struct BanList::Runtime {
  std::shared_ptr<detail::IoThread> io = detail::IoThread::shared();
  std::shared_ptr<Ticker> ticker;
  std::shared_ptr<RedisSubscriber> subscriber;
  std::shared_ptr<Resync> resync;
};

std::shared_ptr<BanList> BanList::create(BanOptions options) {
  std::shared_ptr<BanList> list(new BanList(std::move(options)));
  list->start();
  return list;
}

BanList::BanList(BanOptions options)
    : impl_(std::make_shared<Impl>(std::move(options))), runtime_(std::make_unique<Runtime>()) {}

void BanList::start() {
  auto& o = impl_->options;
  const auto ex = runtime_->io->executor();
  runtime_->ticker = std::make_shared<Ticker>(ex);
  asio::post(ex, [t = runtime_->ticker, w = std::weak_ptr<Impl>(impl_)] { tick(t, w); });
  if (!o.redis) return;
  const std::string tag = "{" + o.redis_prefix + "}";
  impl_->redis = detail::BanRedis{o.redis, tag + ":until", tag + ":info", o.redis_prefix + ":events", o.redis_timeout,
                                  o.instance.empty() ? default_instance() : o.instance};
  runtime_->subscriber = o.redis->subscriber();
  std::weak_ptr<Impl> weak = impl_;
  runtime_->resync = std::make_shared<Resync>(ex, runtime_->subscriber);
  runtime_->subscriber->on_subscribed(ex, [weak, r = runtime_->resync] {
    r->timer.cancel();
    resync(r, weak, ++r->generation, 0);
  });
  runtime_->subscriber->subscribe(impl_->redis->channel, ex, [weak](std::string_view, std::string_view message) {
    if (auto l = weak.lock()) l->on_shared_message(message);
  });
  // The list keeps the client alive through the subscriber; impl_ holds it weakly.
  o.redis.reset();
}

BanList::~BanList() {
  if (runtime_->ticker) asio::post(runtime_->io->executor(), [t = runtime_->ticker] { t->timer.cancel(); });
  if (runtime_->resync) asio::post(runtime_->io->executor(), [r = runtime_->resync] { r->timer.cancel(); });
}

bool BanList::banned(const asio::ip::address& client) const noexcept {
  const Impl& i = *impl_;
  if (i.count.load(std::memory_order_acquire) == 0) return false;
  // Each thread keeps the snapshot it last saw and takes the new one only when the version moved:
  // the common case is two atomic loads and a binary search, no reference count touched.
  thread_local struct {
    std::uint64_t list = 0, version = 0;
    std::shared_ptr<const detail::BanSet> set;
  } cache;
  const std::uint64_t v = i.version.load(std::memory_order_acquire);
  if (cache.list != i.id || cache.version != v || !cache.set) {
    cache.set = i.snapshot.load(std::memory_order_acquire);
    cache.list = i.id;
    cache.version = v;
  }
  return cache.set->contains(detail::address_key(client));
}

bool BanList::any() const noexcept { return impl_->count.load(std::memory_order_acquire) != 0; }

void BanList::count_hit(bool at_accept) const noexcept {
  (at_accept ? impl_->hits_accept : impl_->hits_request).fetch_add(1, std::memory_order_relaxed);
}

void BanList::observe(const SecurityEvent& event) { impl_->observe(event); }

std::shared_ptr<EventSink> BanList::sink() { return std::make_shared<BanSink>(impl_); }

void BanList::set_event_reporter(std::shared_ptr<SecurityEvents> events) {
  std::lock_guard lock(impl_->mutex);
  impl_->events = events;
}

void BanList::attach_metrics(MetricsRegistry& registry) {
  std::weak_ptr<Impl> weak = impl_;
  std::vector<MetricCallbackHandle> handles;
  handles.push_back(registry.gauge_callback(
      {"gatehouse_bans_active", "Clients banned now (automatic bans)."}, [weak]() -> std::vector<MetricSample> {
        auto l = weak.lock();
        return {{{}, l ? static_cast<double>(l->count.load()) : 0.0}};
      }));
  handles.push_back(registry.counter_callback(
      {"gatehouse_ban_hits_total", "Connections and requests of banned clients refused, by stage.", {"stage"}},
      [weak]() -> std::vector<MetricSample> {
        auto l = weak.lock();
        if (!l) return {};
        return {{{"accept"}, static_cast<double>(l->hits_accept.load())},
                {{"request"}, static_cast<double>(l->hits_request.load())}};
      }));
  handles.push_back(registry.counter_callback(
      {"gatehouse_bans_total", "Bans made, by source: score (this instance), api, shared (another instance).",
       {"source"}},
      [weak]() -> std::vector<MetricSample> {
        auto l = weak.lock();
        if (!l) return {};
        return {{{"score"}, static_cast<double>(l->by_score.load())},
                {{"api"}, static_cast<double>(l->by_api.load())},
                {{"shared"}, static_cast<double>(l->by_shared.load())}};
      }));
  std::lock_guard lock(impl_->mutex);
  for (auto& h : handles) impl_->metric_handles.push_back(std::move(h));
}

bool BanList::ban(const asio::ip::address& client, std::chrono::seconds duration, std::string reason) {
  if (duration.count() <= 0) return false;
  return impl_->add(client, impl_->clock->now() + duration, std::move(reason), "api", 1, true);
}

bool BanList::lift(const asio::ip::address& client) { return impl_->lift(client, true, "lifted through the API"); }

std::vector<Ban> BanList::list() const { return impl_->list(); }

double BanList::score(const asio::ip::address& client) const { return impl_->score(client); }

bool BanList::allowed(const asio::ip::address& client) const noexcept { return impl_->allow.contains(client); }

void BanList::expire() { impl_->expire(); }

BanStats BanList::stats() const {
  const Impl& i = *impl_;
  BanStats s;
  s.active = i.count.load();
  {
    std::lock_guard lock(i.mutex);
    s.tracked_clients = i.scores.size();
  }
  s.hits_at_accept = i.hits_accept.load();
  s.hits_per_request = i.hits_request.load();
  s.by_score = i.by_score.load();
  s.by_api = i.by_api.load();
  s.by_shared = i.by_shared.load();
  s.refused_full = i.refused_full.load();
  s.redis_errors = i.redis_errors.load();
  s.resyncs = i.resyncs.load();
  return s;
}

const BanOptions& BanList::options() const noexcept { return impl_->options; }

}  // namespace gatehouse
