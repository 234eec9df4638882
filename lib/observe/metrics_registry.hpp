// Inside MetricsRegistry: the families, their series and the shards' cells.
//
// A family's values are `slots` cells per series (1 for counters and gauges; for histograms one per
// bucket, one for +Inf, one for the sum), for max_series + 1 series (the last one is the
// overflow series), in one block per shard. Blocks are allocated when a family or a shard is
// added, under the lock, and published with a release store: a writer finds its block with one
// acquire load (a plain load on x86) and updates cells with relaxed load + store (single writer, no
// read-modify-write). The scrape sums the cells of every shard with relaxed loads.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "gatehouse/metrics.hpp"

namespace gatehouse::detail {

enum class MetricType : unsigned char { counter, gauge, histogram, counter_callback, gauge_callback };

/// Most families a registry holds (each shard has a table of block pointers this long).
inline constexpr std::size_t kMaxMetricFamilies = 1024;

struct MetricFamilyState {
  // Fixed at declaration: read by writers without the lock.
  std::uint32_t id = 0;
  MetricType type = MetricType::counter;
  std::string name, help;
  std::vector<std::string> labels;
  std::size_t max_series = 0;
  std::vector<double> buckets;  // histograms: upper bounds, +Inf implied
  std::size_t slots = 1;

  // Under the registry's lock.
  std::unordered_map<std::string, std::uint32_t> index;  // series key -> series
  std::vector<std::vector<std::string>> series;          // label values by series index
  bool overflow_used = false;                            // series max_series was handed out
  std::vector<std::pair<std::uint64_t, MetricCallback>> callbacks;

  std::uint32_t overflow_index() const noexcept { return static_cast<std::uint32_t>(max_series); }
  std::size_t block_cells() const noexcept { return (max_series + 1) * slots; }
};

/// The key of a label-value combination: each value with its length in front, so that no value
/// can run into the next.
void append_series_key(std::string& key, std::string_view value);

}  // namespace gatehouse::detail

namespace gatehouse {

struct MetricsShard::Impl {
  std::unique_ptr<std::atomic<std::uint64_t*>[]> blocks{new std::atomic<std::uint64_t*>[detail::kMaxMetricFamilies]{}};
  std::vector<std::unique_ptr<std::uint64_t[]>> owned;  // under the registry's lock
  // The shard's own series cache (its writer only): family id + key -> series.
  std::unordered_map<std::string, std::uint32_t> cache;
  std::string key;  // scratch, so that a lookup allocates nothing once warm
};

struct MetricsRegistry::Impl {
  mutable std::mutex mu;
  // Held while callbacks run, so that a handle's reset() waits for a scrape using its callback.
  // Order: callbacks_mu, then mu.
  mutable std::mutex callbacks_mu;
  std::vector<std::unique_ptr<detail::MetricFamilyState>> families;
  std::vector<std::unique_ptr<MetricsShard>> shards;
  std::uint64_t next_callback = 1;
};

}  // namespace gatehouse
