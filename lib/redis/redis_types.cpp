// The small value types of the Redis client: commands, scripts, the error category.
#include <charconv>
#include <cstdio>
#include <stdexcept>
#include <string>

#include <openssl/evp.h>

#include "gatehouse/redis.hpp"

namespace gatehouse {

namespace {

class RedisCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "gatehouse.redis"; }
  std::string message(int e) const override {
    switch (static_cast<RedisErrc>(e)) {
      case RedisErrc::timed_out: return "redis call timed out";
      case RedisErrc::unavailable: return "redis unavailable";
      case RedisErrc::overloaded: return "too many redis calls outstanding";
      case RedisErrc::connection_lost: return "redis connection lost";
      case RedisErrc::shutting_down: return "redis client shutting down";
    }
    return "unknown redis error";
  }
};

void append_number(std::string& out, std::size_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  (void)ec;
  out.append(buf, end);
}

}  // namespace

const std::error_category& redis_category() noexcept {
  static const RedisCategory category;
  return category;
}

std::error_code make_error_code(RedisErrc e) noexcept { return {static_cast<int>(e), redis_category()}; }

RedisCommand& RedisCommand::arg(std::string_view a) {
  body_ += '$';
  append_number(body_, a.size());
  body_ += "\r\n";
  body_ += a;
  body_ += "\r\n";
  ++count_;
  return *this;
}

RedisCommand& RedisCommand::arg(std::int64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  (void)ec;
  return arg(std::string_view(buf, static_cast<std::size_t>(end - buf)));
}

std::string RedisCommand::encoded() const {
  std::string out;
  out.reserve(body_.size() + 16);
  out += '*';
  append_number(out, count_);
  out += "\r\n";
  out += body_;
  return out;
}

RedisScript::RedisScript(std::string source) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(source.data(), source.size(), md, &len, EVP_sha1(), nullptr) != 1)
    throw std::runtime_error("redis script: SHA1 failed");
  static constexpr char hex[] = "0123456789abcdef";
  std::string sha;
  for (unsigned i = 0; i < len; ++i) {
    sha += hex[md[i] >> 4];
    sha += hex[md[i] & 15];
  }
  data_ = std::make_shared<const Data>(Data{std::move(source), std::move(sha)});
}

RedisCommand RedisClient::evalsha_command(const RedisScript& script, std::span<const std::string_view> keys,
                                          std::span<const std::string_view> args) {
  RedisCommand c{"EVALSHA", script.sha1()};
  c.arg(static_cast<std::int64_t>(keys.size()));
  c.args(keys);
  c.args(args);
  return c;
}

}  // namespace gatehouse
