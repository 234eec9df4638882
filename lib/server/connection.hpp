// One client connection: reads requests, runs the chain, forwards to the upstream, streams back.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>

#include "core/chain.hpp"
#include "http1/parser.hpp"
#include "http1/serializer.hpp"
#include "net/deadline.hpp"
#include "net/stream.hpp"
#include "server/worker.hpp"

namespace gatehouse::detail {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Worker& worker, const ListenerRuntime& listener, tcp::socket socket);
  ~Connection();
  /// Serves requests until the client leaves, an error ends the connection or the gateway stops.
  asio::awaitable<void> run();
  /// Drain: close now if between requests, otherwise after the current response.
  void close_if_idle() noexcept;
  void force_close() noexcept;

 private:
  enum class Phase : unsigned char { handshake, idle, head, body, upstream, response };
  enum class Outcome : unsigned char { keep_alive, close };

  asio::awaitable<Outcome> serve_one();
  asio::awaitable<bool> read_more();
  asio::awaitable<Outcome> answer_locally(Exchange& ex, ChainView chain, std::size_t entered);
  asio::awaitable<Outcome> forward(Exchange& ex, const CompiledRoute& route, std::size_t entered);
  /// Writes (head +) the request body pieces the parser holds to the upstream, through the request
  /// body hooks. `hook_answered` is set when a hook aborted with a response.
  asio::awaitable<asio::error_code> send_request_part(UpstreamConnection& uc, Exchange& ex, ChainView chain,
                                                     std::size_t entered, Framing framing, bool with_head,
                                                     bool last, bool& hook_answered);
  /// Writes (head +) response body pieces to the client, through the response body hooks.
  asio::awaitable<bool> send_response_part(Exchange& ex, ChainView chain, std::size_t entered,
                                           Http1Parser& from, Framing framing, bool with_head, bool last);
  asio::awaitable<bool> write_response_head_and_body(Exchange& ex, bool close);
  asio::awaitable<std::unique_ptr<UpstreamConnection>> connect_upstream(Exchange& ex, Upstream& up,
                                                                        unsigned& fail_status);
  /// Answers a request refused before routing (malformed, limits, timeouts) and closes: the
  /// global chain sees the answer (on_response, on_complete) without having seen the request.
  asio::awaitable<Outcome> refuse(Exchange& ex, unsigned status, std::string_view why);
  asio::awaitable<Outcome> send_error(Exchange& ex, ChainView chain, std::size_t entered, unsigned status,
                                      std::string_view message, bool close);
  /// Completes gather_ for one chunk of `total` bytes whose header slot is at `chunk_index`.
  void frame_chunk(std::size_t chunk_index, std::size_t total, bool last);
  void on_deadline() noexcept;
  void set_deadline_in(std::chrono::milliseconds d) { deadline_->set_in(d); }

  Worker& worker_;
  const ListenerRuntime& listener_;
  Stream stream_;
  std::shared_ptr<Deadline> deadline_;
  Http1Parser parser_{Http1Parser::Kind::request};
  PooledBuffer buf_;
  std::size_t beg_ = 0, end_ = 0;  // unparsed bytes in buf_
  tcp::endpoint peer_;
  std::string peer_text_;  // formatted once: X-Forwarded-For and Forwarded need it per request
  std::string sni_;
  UpstreamConnection* active_upstream_ = nullptr;  // cancelled too when a deadline fires
  std::string scratch_;                            // serialized heads
  std::string chunk_head_;                         // "<size>\r\n" of the chunk being written
  std::vector<asio::const_buffer> gather_;
  Phase phase_ = Phase::handshake;
  bool peer_trusted_ = false;
  bool timed_out_ = false;
  bool closing_ = false;
};

}  // namespace gatehouse::detail
