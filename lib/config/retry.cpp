// An upstream's or a route's "retry" object, and an upstream's "circuit_breaker" (see
// docs/config.md):
//
//   retry  object (all keys optional):
//     attempts            integer 1..10, attempts in all (the first included), default 2
//     on                  array of conditions, default ["connect_failure", "reset", "gateway_error"]:
//                         "connect_failure", "reset", "timeout", "gateway_error" (502, 503, 504),
//                         "5xx" (500..599), or a status 400..599 (integer or string)
//     methods             array of methods (uppercase tokens, or "*") that may be sent again once the
//                         upstream may have seen them; default the idempotent ones
//     idempotent_only     boolean, default true; false is methods ["*"] (not both keys)
//     per_try_timeout_ms  duration, default: the upstream's try_timeout_ms
//     backoff             {base_ms: 0..duration (25), max_ms: >= base_ms (250)}
//     budget              {percent: number 0..100 (20), min_concurrency: integer >= 0 (3)}, or false
//     replay_body_bytes   integer 0..16 MiB, default 65536
//   circuit_breaker  object: max_connections, max_pending_requests, max_requests (integers >= 1,
//                    default 1024), max_retries (integer >= 0, default 3)

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/sections.hpp"

namespace gatehouse::detail {

using nlohmann::json;
using namespace config_json;

namespace {

constexpr std::int64_t kMaxLimit = 0xffffffffLL;
constexpr std::int64_t kMaxReplayBytes = 16 * 1024 * 1024;

unsigned status_condition(const json& j, const std::string& path) {
  std::int64_t status = 0;
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (s.size() == 3 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      status = std::stoi(s);
  } else if (j.is_number_integer()) {
    status = j.get<std::int64_t>();
  }
  if (status < 400 || status > 599) {
    throw ConfigError(path, "expected \"connect_failure\", \"reset\", \"timeout\", \"gateway_error\", \"5xx\" or a "
                            "status 400..599, got " + describe(j));
  }
  return static_cast<unsigned>(status);
}

void parse_conditions(const json& j, const std::string& path, RetryOptions& r) {
  r.on_connect_failure = r.on_reset = r.on_timeout = false;
  r.on_status.clear();
  auto add_status = [&](unsigned s) {
    if (std::find(r.on_status.begin(), r.on_status.end(), s) == r.on_status.end()) r.on_status.push_back(s);
  };
  std::size_t k = 0;
  for (const json& c : as_array(j, path)) {
    const std::string p = child(path, k++);
    const std::string word = c.is_string() ? c.get<std::string>() : std::string();
    if (word == "connect_failure") r.on_connect_failure = true;
    else if (word == "reset") r.on_reset = true;
    else if (word == "timeout") r.on_timeout = true;
    else if (word == "gateway_error") for (unsigned s : {502u, 503u, 504u}) add_status(s);
    else if (word == "5xx") for (unsigned s = 500; s <= 599; ++s) add_status(s);
    else add_status(status_condition(c, p));
  }
}

std::vector<std::string> parse_methods(const json& j, const std::string& path) {
  std::vector<std::string> out;
  std::size_t k = 0;
  for (const json& m : as_array(j, path)) {
    const std::string p = child(path, k++);
    const std::string& s = as_string(m, p);
    const bool upper = std::none_of(s.begin(), s.end(), [](char c) { return c >= 'a' && c <= 'z'; });
    if (s != "*" && (!is_token(s) || !upper))
      throw ConfigError(p, "expected an uppercase method name like \"PUT\", or \"*\", got " + quote(s));
    if (std::find(out.begin(), out.end(), s) != out.end()) throw ConfigError(p, "duplicate method " + quote(s));
    out.push_back(s);
  }
  return out;
}

std::optional<RetryBudget> parse_budget(const json& j, const std::string& path) {
  if (j.is_boolean()) return j.get<bool>() ? std::optional<RetryBudget>(RetryBudget{}) : std::nullopt;
  Object o(j, path, {"percent", "min_concurrency"});
  RetryBudget b;
  if (const json* p = o.find("percent")) {
    if (!p->is_number() || p->get<double>() < 0 || p->get<double>() > 100)
      throw ConfigError(o.at("percent"), "expected a number in 0..100, got " + describe(*p));
    b.percent = p->get<double>();
  }
  b.min_concurrency = static_cast<unsigned>(o.integer("min_concurrency", 0, kMaxLimit, b.min_concurrency));
  return b;
}

}  // namespace

std::shared_ptr<const RetryPolicy> parse_retry(const json& j, const std::string& path) {
  Object o(j, path,
           {"attempts", "on", "methods", "idempotent_only", "per_try_timeout_ms", "backoff", "budget",
            "replay_body_bytes"});
  RetryOptions r;
  r.attempts = static_cast<unsigned>(o.integer("attempts", 1, 10, r.attempts));
  if (const json* on = o.find("on")) parse_conditions(*on, o.at("on"), r);
  if (o.has("methods") && o.has("idempotent_only"))
    throw ConfigError(o.at("idempotent_only"), "give only one of \"methods\" and \"idempotent_only\"");
  if (const json* m = o.find("methods")) r.methods = parse_methods(*m, o.at("methods"));
  if (!o.boolean("idempotent_only", true)) r.methods = {"*"};
  r.per_try_timeout = o.duration("per_try_timeout_ms", std::chrono::milliseconds(0));
  if (const json* b = o.find("backoff")) {
    Object bo(*b, o.at("backoff"), {"base_ms", "max_ms"});
    r.backoff.base = std::chrono::milliseconds(bo.integer("base_ms", 0, duration_max, r.backoff.base.count()));
    const std::int64_t max_default = std::max(r.backoff.max.count(), r.backoff.base.count());
    r.backoff.max = std::chrono::milliseconds(bo.integer("max_ms", 0, duration_max, max_default));
    if (r.backoff.max < r.backoff.base)
      throw ConfigError(bo.at("max_ms"), "must be at least base_ms (" + std::to_string(r.backoff.base.count()) + ")");
  }
  if (const json* b = o.find("budget")) r.budget = parse_budget(*b, o.at("budget"));
  r.replay_body_bytes =
      static_cast<std::size_t>(o.integer("replay_body_bytes", 0, kMaxReplayBytes, static_cast<std::int64_t>(r.replay_body_bytes)));
  return std::make_shared<const StandardRetryPolicy>(std::move(r));
}

CircuitBreakerLimits parse_circuit_breaker(const json& j, const std::string& path) {
  Object o(j, path, {"max_connections", "max_pending_requests", "max_requests", "max_retries"});
  CircuitBreakerLimits l;
  l.max_connections = static_cast<std::uint32_t>(o.integer("max_connections", 1, kMaxLimit, l.max_connections));
  l.max_pending_requests =
      static_cast<std::uint32_t>(o.integer("max_pending_requests", 1, kMaxLimit, l.max_pending_requests));
  l.max_requests = static_cast<std::uint32_t>(o.integer("max_requests", 1, kMaxLimit, l.max_requests));
  l.max_retries = static_cast<std::uint32_t>(o.integer("max_retries", 0, kMaxLimit, l.max_retries));
  return l;
}

}  // namespace gatehouse::detail
