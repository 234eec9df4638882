#include "tls/tls_connect.hpp"

#include <memory>

#include <asio/steady_timer.hpp>

#include "tls/tls_context.hpp"

namespace gatehouse::detail {

std::string ConnectError::reason() const { return timed_out ? std::string("timed out") : error.message(); }

asio::awaitable<ConnectError> connect_stream(Stream& stream, std::span<const tcp::endpoint> endpoints,
                                             std::string_view host, std::chrono::steady_clock::time_point deadline) {
  // The timer's handler may run after this frame is gone (a cancelled wait still completes), so
  // what it shares with the frame lives on the heap and `done` keeps it off the stream.
  struct Watch {
    Stream* stream;
    bool done = false;
    bool fired = false;
  };
  auto watch = std::make_shared<Watch>(Watch{&stream});
  asio::steady_timer timer(stream.socket().get_executor(), deadline);
  timer.async_wait([watch](const asio::error_code& ec) {
    if (ec || watch->done) return;
    watch->fired = true;
    watch->stream->close();
  });
  struct Disarm {
    Watch& watch;
    asio::steady_timer& timer;
    ~Disarm() {
      watch.done = true;
      timer.cancel();
    }
  } disarm{*watch, timer};

  ConnectError result;
  auto fail = [&](ConnectError::Step step, asio::error_code ec) {
    result.step = step;
    result.timed_out = watch->fired;
    result.error = ec ? ec : asio::error_code(asio::error::timed_out);
    return result;
  };

  asio::error_code ec = asio::error::host_not_found;  // no endpoints at all
  for (const tcp::endpoint& ep : endpoints) {
    if (watch->fired) break;
    asio::error_code ignored;
    stream.socket().close(ignored);  // a failed attempt leaves the socket open
    auto [cec] = co_await stream.socket().async_connect(ep, use_tuple);
    ec = cec;
    if (!ec) break;
  }
  // A connect that completed just as the deadline closed the socket counts as timed out.
  if (ec || watch->fired) co_return fail(ConnectError::Step::connect, ec);

  asio::error_code ignored;
  stream.socket().set_option(tcp::no_delay(true), ignored);
  if (stream.is_tls()) {
    prepare_client_stream(stream.tls().native_handle(), host);
    const asio::error_code hec = co_await stream.handshake(TlsStream::Role::client);
    if (hec || watch->fired) co_return fail(ConnectError::Step::handshake, hec);
  }
  co_return result;
}

}  // namespace gatehouse::detail
