#include "redis/resp_reader.hpp"

#include <new>

#include <hiredis/hiredis.h>

namespace gatehouse::detail {

namespace {

RedisReply convert(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::string; break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::status; break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::error; break;
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::integer; break;
    case REDIS_REPLY_ARRAY: out.type = RedisReply::Type::array; break;
    default: out.type = RedisReply::Type::nil; break;
  }
  if (r.type == REDIS_REPLY_INTEGER) out.integer = r.integer;
  if (r.str != nullptr) out.str.assign(r.str, r.len);
  if (r.type == REDIS_REPLY_ARRAY) {
    out.elements.reserve(r.elements);
    for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(convert(*r.element[i]));
  }
  return out;
}

}  // namespace

RespReader::RespReader() : reader_(redisReaderCreate()) {
  if (reader_ == nullptr) throw std::bad_alloc();
}

RespReader::~RespReader() { redisReaderFree(reader_); }

bool RespReader::feed(const char* data, std::size_t size) noexcept {
  return redisReaderFeed(reader_, data, size) == REDIS_OK;
}

std::optional<RedisReply> RespReader::next(bool& error) {
  void* reply = nullptr;
  if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
    error = true;
    return std::nullopt;
  }
  if (reply == nullptr) return std::nullopt;
  struct Free {
    void* r;
    ~Free() { freeReplyObject(r); }
  } guard{reply};
  return convert(*static_cast<redisReply*>(reply));
}

}  // namespace gatehouse::detail
