// Prometheus metrics: counters, gauges and histograms whose values live in per-thread shards (no
// shared atomics on the hot path), summed when scraped, plus callback metrics computed at scrape
// time. The gateway counts its own traffic in one (Gateway::metrics()); an application declares
// its own metrics in the same registry or in one it gives the gateway, and scrapes them anywhere
// with render_prometheus().
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse {

class MetricsRegistry;
class MetricsShard;
namespace detail {
struct MetricFamilyState;
enum class MetricType : unsigned char;
}

/// Declares a metric family.
struct MetricOptions {
  /// [a-zA-Z_:][a-zA-Z0-9_:]*, following Prometheus conventions: base units (seconds, bytes),
  /// counters ending in "_total".
  std::string name{};
  std::string help{};
  /// Label names ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"; "le" is reserved for histogram
  /// buckets). Their values must come from a bounded set: route names, status classes, never paths.
  std::vector<std::string> labels{};
  /// Distinct label-value combinations kept; past it, new combinations are all counted in one
  /// series whose every label value is MetricsRegistry::kOverflowValue.
  std::size_t max_series = 100;
};

/// A series (one label-value combination) of a family, resolved once with `series()` so that the
/// hot path is an array index.
struct MetricSeries {
  std::uint32_t index = 0;
};

/// Common part of the family handles: cheap to copy, valid as long as the registry. A
/// default-constructed handle is detached: every update is ignored.
class MetricFamily {
 public:
  MetricFamily() = default;
  /// The series of these label values (as many as the family has labels, in order). Takes the
  /// registry's lock: call it at setup, keep the result. Past max_series: the overflow series.
  /// Throws std::invalid_argument for a wrong number of values.
  MetricSeries series(std::initializer_list<std::string_view> values = {}) const;
  MetricSeries series(const std::vector<std::string_view>& values) const;
  explicit operator bool() const noexcept { return registry_ != nullptr; }

 protected:
  MetricFamily(MetricsRegistry* r, detail::MetricFamilyState* f) noexcept : registry_(r), family_(f) {}
  /// The cells of `s` in `shard`; null when the shard belongs to another registry (or `s` to
  /// another family): the update is then dropped.
  std::uint64_t* cells(MetricsShard& shard, MetricSeries s) const noexcept;
  /// Looks the series up in the shard's own cache (no lock once seen), then as series().
  MetricSeries lookup(MetricsShard& shard, std::initializer_list<std::string_view> values) const;
  MetricsRegistry* registry_ = nullptr;
  detail::MetricFamilyState* family_ = nullptr;
  friend class MetricsRegistry;
};

/// Monotonic counts (requests, bytes). The value is the sum over the shards.
class Counter : public MetricFamily {
 public:
  Counter() = default;
  /// Adds n to a series in `shard`, which must be the calling thread's own.
  void inc(MetricsShard& shard, MetricSeries s, std::uint64_t n = 1) const noexcept;
  /// The same, for label values known only now (looked up in the shard's cache: no lock, no
  /// allocation once the combination was seen by this shard).
  void inc(MetricsShard& shard, std::initializer_list<std::string_view> values, std::uint64_t n = 1) const;

 private:
  using MetricFamily::MetricFamily;
  friend class MetricsRegistry;
};

/// Values that go up and down (connections open). Each shard holds its part; the value is the sum.
class Gauge : public MetricFamily {
 public:
  Gauge() = default;
  void add(MetricsShard& shard, MetricSeries s, double delta) const noexcept;
  /// Sets this shard's part.
  void set(MetricsShard& shard, MetricSeries s, double value) const noexcept;

 private:
  using MetricFamily::MetricFamily;
  friend class MetricsRegistry;
};

/// Observations counted in fixed buckets (latencies in seconds), with their sum and count.
class Histogram : public MetricFamily {
 public:
  Histogram() = default;
  void observe(MetricsShard& shard, MetricSeries s, double value) const noexcept;
  void observe(MetricsShard& shard, std::initializer_list<std::string_view> values, double value) const;

 private:
  using MetricFamily::MetricFamily;
  friend class MetricsRegistry;
};

/// One value reported by a callback metric.
struct MetricSample {
  std::vector<std::string> labels{};  ///< one value per label name, in order
  double value = 0;
};
/// Computes a callback metric's samples at scrape time, on the scraping thread (so it must be
/// safe to call from any thread). Samples with equal labels are summed.
using MetricCallback = std::function<std::vector<MetricSample>()>;

/// Keeps a callback registered; destroying it (or reset()) removes the callback.
class MetricCallbackHandle {
 public:
  MetricCallbackHandle() = default;
  MetricCallbackHandle(MetricCallbackHandle&& o) noexcept;
  MetricCallbackHandle& operator=(MetricCallbackHandle&& o) noexcept;
  ~MetricCallbackHandle();
  void reset() noexcept;

 private:
  friend class MetricsRegistry;
  MetricCallbackHandle(std::weak_ptr<MetricsRegistry> r, std::uint64_t id) noexcept : registry_(std::move(r)), id_(id) {}
  std::weak_ptr<MetricsRegistry> registry_;
  std::uint64_t id_ = 0;
};

/// One writer's values: a worker thread, or any thread of the application. Only the thread that
/// owns a shard writes to it; scrapes read every shard without stopping the writers.
class MetricsShard {
 public:
  ~MetricsShard();
  MetricsShard(const MetricsShard&) = delete;
  MetricsShard& operator=(const MetricsShard&) = delete;
  const MetricsRegistry& registry() const noexcept { return *registry_; }

 private:
  friend class MetricsRegistry;
  friend class MetricFamily;
  struct Impl;
  explicit MetricsShard(MetricsRegistry& r);
  MetricsRegistry* registry_;
  std::unique_ptr<Impl> impl_;
};

/// The metric families, their series and the shards that hold their values. Declaring metrics,
/// resolving series, adding shards and rendering take a lock; updates do not.
/// Held in a std::shared_ptr (callback handles refer to it weakly).
class MetricsRegistry : public std::enable_shared_from_this<MetricsRegistry> {
 public:
  static constexpr std::string_view kOverflowValue = "_overflow";
  /// Default histogram buckets for latencies in seconds (1 ms to 10 s).
  static std::vector<double> latency_buckets();

  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  /// Declares a family, or returns the one of that name when it has the same type and labels (so
  /// two gateways can share a registry). Throws std::invalid_argument for a bad name or label, or
  /// a name taken by a different family.
  Counter counter(MetricOptions options);
  Gauge gauge(MetricOptions options);
  /// `buckets`: upper bounds, strictly increasing and finite (+Inf is implied); empty: latency_buckets().
  Histogram histogram(MetricOptions options, std::vector<double> buckets = {});
  /// Callback families: the callback's samples are the values. Several callbacks may report into
  /// one family (same type and labels); the family disappears from the scrape when none is left.
  [[nodiscard]] MetricCallbackHandle gauge_callback(MetricOptions options, MetricCallback callback);
  [[nodiscard]] MetricCallbackHandle counter_callback(MetricOptions options, MetricCallback callback);

  /// A new shard for one writing thread; it lives as long as the registry (its counts too).
  MetricsShard& add_shard();

  /// Every family in the Prometheus text exposition format 0.0.4 (serve it with
  /// `Content-Type: text/plain; version=0.0.4`). Labelled counter and histogram series that are
  /// still zero are left out.
  std::string render_prometheus() const;
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  struct Impl;  // lib/observe/metrics_registry.hpp

 private:
  friend class MetricFamily;
  friend class Counter;
  friend class Gauge;
  friend class Histogram;
  friend class MetricsShard;
  friend class MetricCallbackHandle;
  detail::MetricFamilyState& declare(MetricOptions& options, detail::MetricType type, std::vector<double> buckets);
  MetricCallbackHandle add_callback(MetricOptions& options, detail::MetricType type, MetricCallback callback);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gatehouse
