// Pub/sub: a connection of its own (a subscribed connection takes no other commands), subscribed
// again to every channel after each reconnect. The same loop, pointed at the sentinels, follows
// +switch-master for the client.
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
      backoff_(client.io->executor()) {}

void RedisSubscriberLoop::start() {
  asio::co_spawn(client_.io->executor(), [self = shared_from_this()]() { return self->run(); }, asio::detached);
}

void RedisSubscriberLoop::add_channel(const std::string& channel) {
  if (std::find(channels_.begin(), channels_.end(), channel) != channels_.end()) return;
  channels_.push_back(channel);
  if (link_) {
    link_->append(RedisCommand{"SUBSCRIBE", channel}.encoded());
    link_->flush();
  }
}

void RedisSubscriberLoop::reconnect() noexcept {
  if (link_) link_->close();
  backoff_.cancel();
}

void RedisSubscriberLoop::stop() noexcept {
  stopped_ = true;
  reconnect();
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
      link = co_await client_.open_primary(false, error);
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
    std::size_t expected = channels_.size();
    if (expected > 0) {
      RedisCommand sub{"SUBSCRIBE"};
      sub.args(channels_);
      link->append(sub.encoded());
      link->flush();
    }
    std::size_t confirmed = 0;
    auto announce = [&] {
      subscribed.store(true);
      if (on_subscribed_) on_subscribed_();
    };
    if (expected == 0) announce();
    for (;;) {
      auto [ec, size] = co_await link->stream.read_some(asio::buffer(link->read_buffer));
      if (ec || link->closed || !link->reader.feed(link->read_buffer.data(), size)) break;
      bool bad = false;
      while (auto r = link->reader.next(bad)) {
        if (!r->is_array() || r->elements.size() != 3) continue;
        const auto& type = r->elements[0].str;
        if (type == "message") {
          if (on_message_) on_message_(r->elements[1].str, r->elements[2].str);
        } else if (type == "subscribe") {
          if (++confirmed == expected) announce();
        }
      }
      if (bad || link->closed) break;
    }
    link->close();
    link_.reset();
    subscribed.store(false);
    if (stopped_) break;
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
    std::string channel;
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

  void deliver(const std::string& channel, const std::string& message) {
    std::lock_guard lock(mutex);
    for (const auto& l : listeners) {
      if (l.channel != channel) continue;
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
};

std::shared_ptr<RedisSubscriber> RedisClient::subscriber() {
  auto impl = std::make_shared<RedisSubscriber::Impl>();
  impl->client = shared_from_this();
  std::weak_ptr<RedisSubscriber::Impl> weak = impl;
  impl->loop = std::make_shared<detail::RedisSubscriberLoop>(
      *impl_, false,
      [weak](const std::string& channel, const std::string& message) {
        if (auto i = weak.lock()) i->deliver(channel, message);
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
  {
    std::lock_guard lock(impl_->mutex);
    impl_->listeners.push_back({channel, std::move(ex), std::move(handler)});
  }
  asio::post(impl_->client->executor(), [loop = impl_->loop, channel = std::move(channel)] { loop->add_channel(channel); });
}

void RedisSubscriber::on_subscribed(asio::any_io_executor ex, std::function<void()> handler) {
  std::lock_guard lock(impl_->mutex);
  impl_->on_subscribed.push_back({std::move(ex), std::move(handler)});
}

bool RedisSubscriber::subscribed() const noexcept { return impl_->loop->subscribed.load(); }

}  // namespace gatehouse
