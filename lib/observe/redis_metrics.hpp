#pragma once
// The gateway's Redis connections in its metrics (gatehouse_redis_*): read from each client's
// stats() at scrape time, so the calls themselves pay nothing.
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "gatehouse/metrics.hpp"

namespace gatehouse {
class RedisClient;
}

namespace gatehouse::detail {

class RedisMetrics {
 public:
  explicit RedisMetrics(MetricsRegistry& registry);

  /// Reports `client` under `name` while it lives. A reload that replaces a connection (its
  /// definition changed) reports the newest under the name; its counters start again from zero,
  /// as after a restart.
  void watch(std::string name, const std::shared_ptr<RedisClient>& client);

 private:
  struct Watch {
    std::mutex mu;
    std::vector<std::pair<std::string, std::weak_ptr<RedisClient>>> clients;  // oldest first
  };
  std::shared_ptr<Watch> watch_ = std::make_shared<Watch>();
  MetricCallbackHandle connected_, pending_, calls_, errors_, connects_, script_loads_;
};

}  // namespace gatehouse::detail
