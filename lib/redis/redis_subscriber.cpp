// Pub/sub: a connection of its own (a subscribed connection takes no other commands), subscribed
// again to every channel and pattern after each reconnect. The same loop, pointed at the
// sentinels, follows +switch-master for the client.
#include <algorithm>
#include <mutex>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>

#include "redis/redis_client_impl.hpp"
#include "util/log.hpp"

namespace gatehouse {

namespace detail {

RedisSubscriberLoop::RedisSubscriberLoop(RedisClientImpl& client, bool sentinels, OnMessage on_message,
                                         OnSubscribed on_subscribed)
    : client_(client),
      sentinels_(sentinels),
      on_message_(std::move(on_message)),
      on_subscribed_(std::move(on_subscribed)),
      backoff_(client.io->executor()),
      ping_timer_(client.io->executor()) {}

void RedisSubscriberLoop::start() {
  asio::co_spawn(client_.io->executor(), [self = shared_from_this()]() { return self->run(); }, asio::detached);
}

void RedisSubscriberLoop::send(const char* command, const Topic& topic) {
  link_->append(RedisCommand{command, topic.name}.encoded());
  link_->flush();
}

void RedisSubscriberLoop::add(const Topic& topic) {
  if (std::find(topics_.begin(), topics_.end(), topic) != topics_.end()) return;
  topics_.push_back(topic);
  if (!link_) return;  // subscribed when the connection is made
  send(topic.pattern ? "PSUBSCRIBE" : "SUBSCRIBE", topic);
  unconfirmed_.push_back(topic);
  announced_ = false;
  subscribed.store(false);
}

void RedisSubscriberLoop::remove(const Topic& topic) {
  const auto it = std::find(topics_.begin(), topics_.end(), topic);
  if (it == topics_.end()) return;
  topics_.erase(it);
  if (!link_) return;
  send(topic.pattern ? "PUNSUBSCRIBE" : "UNSUBSCRIBE", topic);
  std::erase(unconfirmed_, topic);
  announce_if_complete();
}

void RedisSubscriberLoop::announce_if_complete() {
  if (!link_ || announced_ || !unconfirmed_.empty()) return;
  announced_ = true;
  was_subscribed_ = true;
  subscribed.store(true);
  if (on_subscribed_) on_subscribed_();
}

void RedisSubscriberLoop::on_reply(const RedisReply& r) {
  // PING answers "+PONG" on a connection with no subscription, ["pong", ""] on a subscribed one.
  if (r.type == RedisReply::Type::status && r.str == "PONG") {
    ping_sent_.reset();
    return;
  }
  if (!r.is_array() || r.elements.empty()) return;
  const auto& e = r.elements;
  const std::string& kind = e[0].str;
  if (kind == "message" && e.size() == 3) {
    if (on_message_) on_message_(false, e[1].str, e[1].str, e[2].str);
  } else if (kind == "pmessage" && e.size() == 4) {
    if (on_message_) on_message_(true, e[1].str, e[2].str, e[3].str);
  } else if ((kind == "subscribe" || kind == "psubscribe") && e.size() == 3) {
    const Topic confirmed{e[1].str, kind == "psubscribe"};
    if (auto it = std::find(unconfirmed_.begin(), unconfirmed_.end(), confirmed); it != unconfirmed_.end())
      unconfirmed_.erase(it);
    announce_if_complete();
  } else if (kind == "pong") {
    ping_sent_.reset();
  }
}

void RedisSubscriberLoop::reconnect() noexcept {
  if (link_) link_->close();
  backoff_.cancel();
  ping_timer_.cancel();
}

void RedisSubscriberLoop::stop() noexcept {
  stopped_ = true;
  reconnect();
}

// A subscribed connection carries no replies to wait for: a server that stopped or a peer that
// vanished without a FIN would go unnoticed (and every message with it). A PING unanswered for
// stall_timeout drops the connection, which is then made again.
asio::awaitable<void> RedisSubscriberLoop::watch(std::shared_ptr<RedisLink> link) {
  const auto limit = client_.options.stall_timeout;
  const auto tick = std::clamp(limit / 2, std::chrono::milliseconds(20), std::chrono::milliseconds(1000));
  while (!link->closed && link == link_) {
    ping_timer_.expires_after(tick);
    co_await ping_timer_.async_wait(use_tuple);
    if (link->closed || link != link_ || stopped_) break;
    const auto now = std::chrono::steady_clock::now();
    if (!ping_sent_) {
      ping_sent_ = now;
      link->append(RedisCommand{"PING"}.encoded());
      link->flush();
    } else if (now - *ping_sent_ > limit) {
      log(nullptr, LogLevel::warning,
          "redis " + client_.options.name + ": pub/sub: no answer to PING for " + std::to_string(limit.count()) +
              " ms; reconnecting");
      link->close();
    }
  }
}

asio::awaitable<void> RedisSubscriberLoop::run() {
  const auto& o = client_.options;
  unsigned failures = 0;
  while (!stopped_ && !client_.stopping.load()) {
    std::string error;
    std::shared_ptr<RedisLink> link;
    if (sentinels_) {
      std::vector<RedisCommand> hello;
      if (auto auth = auth_command(o.sentinel.username, o.sentinel.password)) hello.push_back(std::move(*auth));
      const std::size_t n = o.sentinel.addresses.size();
      for (std::size_t i = 0; i < n && !link && !stopped_; ++i) {
        sentinel_index_ = (sentinel_index_ + (i == 0 ? 0 : 1)) % n;
        std::vector<RedisReply> replies;
        link = co_await open_redis_link(client_.io->executor(), client_.tls.get(),
                                        RedisTarget::parse(o.sentinel.addresses[sentinel_index_]), hello,
                                        std::chrono::steady_clock::now() + o.connect_timeout, replies, error);
      }
    } else {
      link = co_await client_.open_primary(false, error);  // AUTH, ROLE, SELECT done
    }
    if (stopped_ || client_.stopping.load()) {
      if (link) link->close();
      break;
    }
    if (!link) {
      ++failures;
      log(nullptr, LogLevel::debug, "redis " + o.name + ": pub/sub: " + error);
      backoff_.expires_after(redis_backoff(o, failures));
      co_await backoff_.async_wait(use_tuple);
      continue;
    }
    failures = 0;
    link_ = link;
    unconfirmed_.clear();
    announced_ = was_subscribed_ = false;
    ping_sent_.reset();
    // Everything still wanted, in one SUBSCRIBE and one PSUBSCRIBE.
    RedisCommand channels{"SUBSCRIBE"}, patterns{"PSUBSCRIBE"};
    for (const auto& t : topics_) {
      (t.pattern ? patterns : channels).arg(t.name);
      unconfirmed_.push_back(t);
    }
    if (channels.size() > 1) link->append(channels.encoded());
    if (patterns.size() > 1) link->append(patterns.encoded());
    link->flush();
    announce_if_complete();  // nothing to subscribe to: being connected is all there is
    asio::co_spawn(client_.io->executor(), [self = shared_from_this(), link] { return self->watch(link); },
                   asio::detached);
    for (;;) {
      auto [ec, size] = co_await link->stream.read_some(asio::buffer(link->read_buffer));
      if (ec || link->closed || !link->reader.feed(link->read_buffer.data(), size)) break;
      bool bad = false;
      while (auto r = link->reader.next(bad)) on_reply(*r);
      if (bad || link->closed) break;
    }
    link->close();
    link_.reset();
    ping_timer_.cancel();
    subscribed.store(false);
    if (stopped_ || client_.stopping.load()) break;
    if (was_subscribed_) gaps.fetch_add(1);
    // Not at once: a server that accepts and drops again would otherwise be hammered.
    backoff_.expires_after(redis_backoff(o, 1));
    co_await backoff_.async_wait(use_tuple);
  }
}

}  // namespace detail

struct RedisSubscriber::Impl {
  struct Target {
    asio::any_io_executor ex;
    std::function<void()> fn;
  };
  struct Listener {
    std::string subscription;  // a channel, or a pattern
    bool pattern;
    asio::any_io_executor ex;
    MessageHandler fn;
  };
  std::shared_ptr<RedisClient> client;
  std::shared_ptr<detail::RedisSubscriberLoop> loop;
  std::mutex mutex;
  std::vector<Listener> listeners;
  std::vector<Target> on_subscribed;
  // Checked by every posted handler: none starts once the subscriber is gone.
  std::shared_ptr<std::atomic<bool>> alive = std::make_shared<std::atomic<bool>>(true);

  void deliver(bool pattern, const std::string& subscription, const std::string& channel, const std::string& message) {
    std::lock_guard lock(mutex);
    for (const auto& l : listeners) {
      if (l.pattern != pattern || l.subscription != subscription) continue;
      asio::post(l.ex, [alive = alive, fn = l.fn, channel, message] {
        if (alive->load()) fn(channel, message);
      });
    }
  }
  void subscribed() {
    std::lock_guard lock(mutex);
    for (const auto& t : on_subscribed)
      asio::post(t.ex, [alive = alive, fn = t.fn] {
        if (alive->load()) fn();
      });
  }
  void listen(std::string name, bool pattern, asio::any_io_executor ex, MessageHandler handler) {
    {
      std::lock_guard lock(mutex);
      listeners.push_back({name, pattern, std::move(ex), std::move(handler)});
    }
    change([loop = loop, topic = detail::RedisSubscriberLoop::Topic{std::move(name), pattern}] { loop->add(topic); });
  }
  // Counted before it is posted: subscribed() is false from the moment subscribe() returns until
  // the new subscription is confirmed.
  template <class F>
  void change(F f) {
    loop->queued.fetch_add(1);
    asio::post(client->executor(), [loop = loop, f = std::move(f)] {
      f();
      loop->queued.fetch_sub(1);
    });
  }
};

std::shared_ptr<RedisSubscriber> RedisClient::subscriber() {
  auto impl = std::make_shared<RedisSubscriber::Impl>();
  impl->client = shared_from_this();
  std::weak_ptr<RedisSubscriber::Impl> weak = impl;
  impl->loop = std::make_shared<detail::RedisSubscriberLoop>(
      *impl_, false,
      [weak](bool pattern, const std::string& subscription, const std::string& channel, const std::string& message) {
        if (auto i = weak.lock()) i->deliver(pattern, subscription, channel, message);
      },
      [weak] {
        if (auto i = weak.lock()) i->subscribed();
      });
  asio::post(executor(), [client = impl_.get(), loop = impl->loop] { client->add_loop(loop); });
  impl->loop->start();
  return std::shared_ptr<RedisSubscriber>(new RedisSubscriber(std::move(impl)));
}

RedisSubscriber::~RedisSubscriber() {
  impl_->alive->store(false);
  asio::post(impl_->client->executor(), [loop = impl_->loop] { loop->stop(); });
}

void RedisSubscriber::subscribe(std::string channel, asio::any_io_executor ex, MessageHandler handler) {
  impl_->listen(std::move(channel), false, std::move(ex), std::move(handler));
}

void RedisSubscriber::psubscribe(std::string pattern, asio::any_io_executor ex, MessageHandler handler) {
  impl_->listen(std::move(pattern), true, std::move(ex), std::move(handler));
}

void RedisSubscriber::unsubscribe(std::string channel, bool pattern) {
  {
    std::lock_guard lock(impl_->mutex);
    std::erase_if(impl_->listeners,
                  [&](const Impl::Listener& l) { return l.pattern == pattern && l.subscription == channel; });
  }
  impl_->change([loop = impl_->loop, topic = detail::RedisSubscriberLoop::Topic{std::move(channel), pattern}] {
    loop->remove(topic);
  });
}

void RedisSubscriber::on_subscribed(asio::any_io_executor ex, std::function<void()> handler) {
  std::lock_guard lock(impl_->mutex);
  impl_->on_subscribed.push_back({std::move(ex), std::move(handler)});
}

bool RedisSubscriber::subscribed() const noexcept {
  // `queued` first: a change that ran cleared `subscribed` before it was uncounted.
  return impl_->loop->queued.load() == 0 && impl_->loop->subscribed.load();
}

std::uint64_t RedisSubscriber::gaps() const noexcept { return impl_->loop->gaps.load(); }

}  // namespace gatehouse
