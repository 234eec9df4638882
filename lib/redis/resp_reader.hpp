// RESP replies out of a byte stream, parsed by hiredis's reply reader (only the parser: the
// networking is the client's own).
#pragma once
#include <cstddef>
#include <optional>

#include "gatehouse/redis.hpp"

struct redisReader;

namespace gatehouse::detail {

class RespReader {
 public:
  RespReader();
  ~RespReader();
  RespReader(const RespReader&) = delete;
  RespReader& operator=(const RespReader&) = delete;

  /// Appends received bytes. False on a protocol error (the connection is unusable).
  bool feed(const char* data, std::size_t size) noexcept;
  /// The next complete reply, if any. Sets `error` on a protocol error.
  std::optional<RedisReply> next(bool& error);

 private:
  redisReader* reader_;
};

}  // namespace gatehouse::detail
