#include "observe/metrics_registry.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <span>
#include <stdexcept>
#include <utility>

namespace gatehouse {
namespace {

using detail::MetricFamilyState;
using detail::MetricType;

bool valid_metric_name(std::string_view n) noexcept {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool valid_label_name(std::string_view n) noexcept {
  if (n.empty() || n.starts_with("__")) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Single writer: a relaxed load and store, no read-modify-write (no lock prefix on x86).
inline void add_cell(std::uint64_t& cell, std::uint64_t n) noexcept {
  std::atomic_ref<std::uint64_t> c(cell);
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline void add_cell_double(std::uint64_t& cell, double d) noexcept {
  std::atomic_ref<std::uint64_t> c(cell);
  const double now = std::bit_cast<double>(c.load(std::memory_order_relaxed)) + d;
  c.store(std::bit_cast<std::uint64_t>(now), std::memory_order_relaxed);
}

// The series for `values` (the lock is held).
std::uint32_t resolve_locked(MetricFamilyState& f, const std::string& key, std::span<const std::string_view> values) {
  if (auto it = f.index.find(key); it != f.index.end()) return it->second;
  if (f.series.size() >= f.max_series) {
    f.overflow_used = true;
    return f.overflow_index();
  }
  const auto index = static_cast<std::uint32_t>(f.series.size());
  f.series.emplace_back(values.begin(), values.end());
  f.index.emplace(key, index);
  return index;
}

void check_arity(const MetricFamilyState& f, std::size_t n) {
  if (n != f.labels.size()) {
    throw std::invalid_argument("metric " + f.name + ": " + std::to_string(n) + " label values for " +
                                std::to_string(f.labels.size()) + " labels");
  }
}

}  // namespace

namespace detail {
void append_series_key(std::string& key, std::string_view value) {
  const auto n = static_cast<std::uint32_t>(value.size());
  key.append(reinterpret_cast<const char*>(&n), sizeof n);
  key.append(value);
}
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Families: series resolution and updates
// ---------------------------------------------------------------------------------------------

MetricSeries MetricFamily::series(std::initializer_list<std::string_view> values) const {
  return series(std::vector<std::string_view>(values));
}

MetricSeries MetricFamily::series(const std::vector<std::string_view>& values) const {
  if (!registry_) return {};
  check_arity(*family_, values.size());
  std::string key;
  for (auto v : values) detail::append_series_key(key, v);
  std::lock_guard lock(registry_->impl_->mu);
  return {resolve_locked(*family_, key, values)};
}

MetricSeries MetricFamily::lookup(MetricsShard& shard, std::initializer_list<std::string_view> values) const {
  if (!registry_ || shard.registry_ != registry_) return {};
  check_arity(*family_, values.size());
  MetricsShard::Impl& s = *shard.impl_;
  std::string& key = s.key;
  key.clear();
  key.append(reinterpret_cast<const char*>(&family_->id), sizeof family_->id);
  for (auto v : values) detail::append_series_key(key, v);
  if (auto it = s.cache.find(key); it != s.cache.end()) return {it->second};
  std::uint32_t index;
  {
    std::lock_guard lock(registry_->impl_->mu);
    index = resolve_locked(*family_, key.substr(sizeof family_->id), std::span<const std::string_view>(values.begin(), values.size()));
  }
  // Bounded: combinations past a family's cap (overflow) are cached only while the cache is small.
  if (index != family_->overflow_index() || s.cache.size() < 4096) s.cache.emplace(key, index);
  return {index};
}

std::uint64_t* MetricFamily::cells(MetricsShard& shard, MetricSeries s) const noexcept {
  if (!registry_ || shard.registry_ != registry_ || s.index > family_->max_series) return nullptr;
  std::uint64_t* block = shard.impl_->blocks[family_->id].load(std::memory_order_acquire);
  return block ? block + s.index * family_->slots : nullptr;
}

void Counter::inc(MetricsShard& shard, MetricSeries s, std::uint64_t n) const noexcept {
  if (std::uint64_t* c = cells(shard, s)) add_cell(*c, n);
}

void Counter::inc(MetricsShard& shard, std::initializer_list<std::string_view> values, std::uint64_t n) const {
  inc(shard, lookup(shard, values), n);
}

void Gauge::add(MetricsShard& shard, MetricSeries s, double delta) const noexcept {
  if (std::uint64_t* c = cells(shard, s)) add_cell_double(*c, delta);
}

void Gauge::set(MetricsShard& shard, MetricSeries s, double value) const noexcept {
  if (std::uint64_t* c = cells(shard, s))
    std::atomic_ref<std::uint64_t>(*c).store(std::bit_cast<std::uint64_t>(value), std::memory_order_relaxed);
}

void Histogram::observe(MetricsShard& shard, MetricSeries s, double value) const noexcept {
  if (std::isnan(value)) return;
  std::uint64_t* c = cells(shard, s);
  if (!c) return;
  // The first bucket whose bound is >= value ("le"); past the last bound, +Inf.
  const auto& b = family_->buckets;
  const auto bucket = static_cast<std::size_t>(std::lower_bound(b.begin(), b.end(), value) - b.begin());
  add_cell(c[bucket], 1);
  add_cell_double(c[b.size() + 1], value);
}

void Histogram::observe(MetricsShard& shard, std::initializer_list<std::string_view> values, double value) const {
  observe(shard, lookup(shard, values), value);
}

// ---------------------------------------------------------------------------------------------
// Callback handles
// ---------------------------------------------------------------------------------------------

MetricCallbackHandle::MetricCallbackHandle(MetricCallbackHandle&& o) noexcept
    : registry_(std::move(o.registry_)), id_(std::exchange(o.id_, 0)) {}

MetricCallbackHandle& MetricCallbackHandle::operator=(MetricCallbackHandle&& o) noexcept {
  if (this != &o) {
    reset();
    registry_ = std::move(o.registry_);
    id_ = std::exchange(o.id_, 0);
  }
  return *this;
}

MetricCallbackHandle::~MetricCallbackHandle() { reset(); }

void MetricCallbackHandle::reset() noexcept {
  if (id_ == 0) return;
  if (auto r = registry_.lock()) {
    MetricsRegistry::Impl& impl = *r->impl_;
    std::lock_guard wait_for_scrape(impl.callbacks_mu);
    std::lock_guard lock(impl.mu);
    for (auto& f : impl.families) {
      std::erase_if(f->callbacks, [this](const auto& c) { return c.first == id_; });
    }
  }
  registry_.reset();
  id_ = 0;
}

// ---------------------------------------------------------------------------------------------
// Shards and the registry
// ---------------------------------------------------------------------------------------------

MetricsShard::MetricsShard(MetricsRegistry& r) : registry_(&r), impl_(std::make_unique<Impl>()) {}
MetricsShard::~MetricsShard() = default;

MetricsRegistry::MetricsRegistry() : impl_(std::make_unique<Impl>()) {}
MetricsRegistry::~MetricsRegistry() = default;

std::vector<double> MetricsRegistry::latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

namespace {
bool is_callback(MetricType t) noexcept { return t == MetricType::counter_callback || t == MetricType::gauge_callback; }
}  // namespace

MetricFamilyState& MetricsRegistry::declare(MetricOptions& o, MetricType type, std::vector<double> buckets) {
  if (!valid_metric_name(o.name)) throw std::invalid_argument("invalid metric name \"" + o.name + "\"");
  for (std::size_t i = 0; i < o.labels.size(); ++i) {
    const std::string& l = o.labels[i];
    const auto before = o.labels.begin() + static_cast<std::ptrdiff_t>(i);
    if (!valid_label_name(l)) throw std::invalid_argument("metric " + o.name + ": invalid label name \"" + l + "\"");
    if (type == MetricType::histogram && l == "le")
      throw std::invalid_argument("metric " + o.name + ": \"le\" is the histogram's bucket label");
    if (std::find(o.labels.begin(), before, l) != before)
      throw std::invalid_argument("metric " + o.name + ": label \"" + l + "\" twice");
  }
  if (type == MetricType::histogram) {
    if (buckets.empty()) buckets = latency_buckets();
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      if (!std::isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1])))
        throw std::invalid_argument("metric " + o.name + ": histogram buckets must be finite and increasing");
    }
  }
  Impl& impl = *impl_;
  std::lock_guard lock(impl.mu);
  for (auto& f : impl.families) {
    if (f->name != o.name) continue;
    if (f->type == type && f->labels == o.labels && f->buckets == buckets) return *f;
    throw std::invalid_argument("metric " + o.name + " is already declared with another type, labels or buckets");
  }
  if (impl.families.size() >= detail::kMaxMetricFamilies)
    throw std::invalid_argument("metric " + o.name + ": too many metric families");
  auto f = std::make_unique<MetricFamilyState>();
  f->id = static_cast<std::uint32_t>(impl.families.size());
  f->type = type;
  f->name = std::move(o.name);
  f->help = std::move(o.help);
  f->labels = std::move(o.labels);
  // An unlabelled family has exactly one series, there from the start.
  f->max_series = f->labels.empty() ? 1 : std::max<std::size_t>(o.max_series, 1);
  f->buckets = std::move(buckets);
  f->slots = type == MetricType::histogram ? f->buckets.size() + 2 : 1;
  if (f->labels.empty() && !is_callback(type)) {
    f->series.emplace_back();
    f->index.emplace(std::string(), 0);
  }
  if (!is_callback(type)) {
    for (auto& shard : impl.shards) {
      MetricsShard::Impl& s = *shard->impl_;
      auto block = std::make_unique<std::uint64_t[]>(f->block_cells());
      s.blocks[f->id].store(block.get(), std::memory_order_release);
      s.owned.push_back(std::move(block));
    }
  }
  impl.families.push_back(std::move(f));
  return *impl.families.back();
}

Counter MetricsRegistry::counter(MetricOptions options) {
  return Counter(this, &declare(options, MetricType::counter, {}));
}

Gauge MetricsRegistry::gauge(MetricOptions options) { return Gauge(this, &declare(options, MetricType::gauge, {})); }

Histogram MetricsRegistry::histogram(MetricOptions options, std::vector<double> buckets) {
  return Histogram(this, &declare(options, MetricType::histogram, std::move(buckets)));
}

MetricCallbackHandle MetricsRegistry::add_callback(MetricOptions& options, MetricType type, MetricCallback callback) {
  if (!callback) throw std::invalid_argument("metric " + options.name + ": empty callback");
  MetricFamilyState& f = declare(options, type, {});
  std::lock_guard lock(impl_->mu);
  const std::uint64_t id = impl_->next_callback++;
  f.callbacks.emplace_back(id, std::move(callback));
  return MetricCallbackHandle(weak_from_this(), id);
}

MetricCallbackHandle MetricsRegistry::gauge_callback(MetricOptions options, MetricCallback callback) {
  return add_callback(options, MetricType::gauge_callback, std::move(callback));
}

MetricCallbackHandle MetricsRegistry::counter_callback(MetricOptions options, MetricCallback callback) {
  return add_callback(options, MetricType::counter_callback, std::move(callback));
}

MetricsShard& MetricsRegistry::add_shard() {
  std::unique_ptr<MetricsShard> shard(new MetricsShard(*this));
  std::lock_guard lock(impl_->mu);
  for (auto& f : impl_->families) {
    if (is_callback(f->type)) continue;
    auto block = std::make_unique<std::uint64_t[]>(f->block_cells());
    shard->impl_->blocks[f->id].store(block.get(), std::memory_order_release);
    shard->impl_->owned.push_back(std::move(block));
  }
  impl_->shards.push_back(std::move(shard));
  return *impl_->shards.back();
}

}  // namespace gatehouse
