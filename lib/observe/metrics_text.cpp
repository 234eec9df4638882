// MetricsRegistry::render_prometheus: sums every shard's cells and writes the text format.
#include "observe/metrics_text.hpp"

#include <atomic>
#include <bit>
#include <charconv>
#include <cmath>
#include <functional>
#include <memory>
#include <vector>
#include <unordered_map>

#include "observe/metrics_registry.hpp"

namespace gatehouse {
namespace detail {

namespace {

// Length of the valid UTF-8 sequence at s[i], 0 when the bytes there are not one.
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if ((c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F)) return 0;  // overlong, surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if ((c == 0xF0 && b(1) < 0x90) || (c == 0xF4 && b(1) > 0x8F)) return 0;  // overlong, past U+10FFFF
    return 4;
  }
  return 0;
}

// Escapes backslash, line feed and (in label values) double quote; bytes that are not UTF-8
// become U+FFFD, so that a label value taken from a request cannot spoil the whole scrape.
void append_escaped(std::string& out, std::string_view v, bool quote) {
  for (std::size_t i = 0; i < v.size();) {
    const char c = v[i];
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quote) out += "\\\"";
    else if (const std::size_t n = utf8_sequence(v, i); n > 0) {
      out.append(v.substr(i, n));
      i += n;
      continue;
    } else out += "\xEF\xBF\xBD";
    ++i;
  }
}

}  // namespace

void append_label_value(std::string& out, std::string_view v) {
  out += '"';
  append_escaped(out, v, true);
  out += '"';
}

void append_help_text(std::string& out, std::string_view v) { append_escaped(out, v, false); }

void append_sample_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

void append_sample_value(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace detail

namespace {

using detail::MetricFamilyState;
using detail::MetricType;

std::uint64_t load(const std::uint64_t& cell) noexcept {
  // The cells are written by their shard's thread while we read: atomically, relaxed.
  return std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(cell)).load(std::memory_order_relaxed);
}

std::string_view type_name(MetricType t) noexcept {
  switch (t) {
    case MetricType::counter:
    case MetricType::counter_callback: return "counter";
    case MetricType::gauge:
    case MetricType::gauge_callback: return "gauge";
    case MetricType::histogram: return "histogram";
  }
  return "untyped";
}

void append_header(std::string& out, const std::string& name, const std::string& help, MetricType type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  detail::append_help_text(out, help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type_name(type);
  out += '\n';
}

// `{a="x",b="y"` without the closing brace (empty when there are no labels and no extra one).
std::string label_text(const std::vector<std::string>& names, const std::vector<std::string>& values) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) {
    s += i == 0 ? '{' : ',';
    s += names[i];
    s += '=';
    detail::append_label_value(s, values[i]);
  }
  return s;
}

void append_sample(std::string& out, std::string_view name, std::string_view suffix, const std::string& labels,
                   std::string_view extra_label = {}) {
  out += name;
  out += suffix;
  if (!labels.empty() || !extra_label.empty()) {
    out += labels.empty() ? "{" : labels;
    if (!extra_label.empty()) {
      if (!labels.empty()) out += ',';
      out += extra_label;
    }
    out += '}';
  }
  out += ' ';
}

// The values of one series summed over the shards: `slots` cells.
void sum_series(const MetricFamilyState& f, const std::vector<std::unique_ptr<MetricsShard>>& shards,
                std::uint32_t series, std::vector<std::uint64_t>& ints, std::vector<double>& doubles,
                const std::function<const std::uint64_t*(const MetricsShard&)>& block_of) {
  ints.assign(f.slots, 0);
  doubles.assign(f.slots, 0.0);
  for (const auto& shard : shards) {
    const std::uint64_t* block = block_of(*shard);
    if (!block) continue;
    const std::uint64_t* c = block + static_cast<std::size_t>(series) * f.slots;
    for (std::size_t k = 0; k < f.slots; ++k) {
      const std::uint64_t raw = load(c[k]);
      ints[k] += raw;
      doubles[k] += std::bit_cast<double>(raw);
    }
  }
}

void render_series(std::string& out, const MetricFamilyState& f, const std::vector<std::string>& values,
                   const std::vector<std::uint64_t>& ints, const std::vector<double>& doubles) {
  const std::string labels = label_text(f.labels, values);
  switch (f.type) {
    case MetricType::counter:
      if (!f.labels.empty() && ints[0] == 0) return;  // never counted: not worth a line
      append_sample(out, f.name, {}, labels);
      detail::append_sample_value(out, ints[0]);
      out += '\n';
      return;
    case MetricType::gauge:
      append_sample(out, f.name, {}, labels);
      detail::append_sample_value(out, doubles[0]);
      out += '\n';
      return;
    case MetricType::histogram: {
      const std::size_t n = f.buckets.size();
      std::uint64_t total = 0;
      for (std::size_t k = 0; k <= n; ++k) total += ints[k];
      if (!f.labels.empty() && total == 0) return;
      std::uint64_t cumulative = 0;
      std::string le;
      for (std::size_t k = 0; k <= n; ++k) {
        cumulative += ints[k];
        le = "le=\"";
        if (k < n) detail::append_sample_value(le, f.buckets[k]);
        else le += "+Inf";
        le += '"';
        append_sample(out, f.name, "_bucket", labels, le);
        detail::append_sample_value(out, cumulative);
        out += '\n';
      }
      append_sample(out, f.name, "_sum", labels);
      detail::append_sample_value(out, doubles[n + 1]);
      out += '\n';
      append_sample(out, f.name, "_count", labels);
      detail::append_sample_value(out, total);
      out += '\n';
      return;
    }
    case MetricType::counter_callback:
    case MetricType::gauge_callback:
      return;
  }
}

struct CallbackJob {
  std::size_t part;
  std::string name, help;
  MetricType type;
  std::vector<std::string> labels;
  std::vector<MetricCallback> callbacks;
};

void render_callbacks(std::string& out, const CallbackJob& job) {
  // Samples with equal labels are summed (several gateways may report into one family).
  std::vector<MetricSample> merged;
  std::unordered_map<std::string, std::size_t> position;
  std::string key;
  for (const auto& cb : job.callbacks) {
    std::vector<MetricSample> samples;
    try {
      samples = cb();
    } catch (...) {
      continue;  // a failing callback costs its own samples only
    }
    for (auto& s : samples) {
      if (s.labels.size() != job.labels.size()) continue;
      key.clear();
      for (const auto& v : s.labels) detail::append_series_key(key, v);
      auto [it, fresh] = position.emplace(key, merged.size());
      if (fresh) merged.push_back(std::move(s));
      else merged[it->second].value += s.value;
    }
  }
  append_header(out, job.name, job.help, job.type);
  for (const auto& s : merged) {
    append_sample(out, job.name, {}, label_text(job.labels, s.labels));
    detail::append_sample_value(out, s.value);
    out += '\n';
  }
}

}  // namespace

std::string MetricsRegistry::render_prometheus() const {
  std::lock_guard callbacks_lock(impl_->callbacks_mu);
  std::vector<std::string> parts;
  std::vector<CallbackJob> jobs;
  {
    std::lock_guard lock(impl_->mu);
    parts.resize(impl_->families.size());
    std::vector<std::uint64_t> ints;
    std::vector<double> doubles;
    for (std::size_t i = 0; i < impl_->families.size(); ++i) {
      const MetricFamilyState& f = *impl_->families[i];
      if (f.type == MetricType::counter_callback || f.type == MetricType::gauge_callback) {
        if (f.callbacks.empty()) continue;
        CallbackJob job{i, f.name, f.help, f.type, f.labels, {}};
        for (const auto& [id, cb] : f.callbacks) job.callbacks.push_back(cb);
        jobs.push_back(std::move(job));
        continue;
      }
      std::string& out = parts[i];
      append_header(out, f.name, f.help, f.type);
      auto block_of = [&f](const MetricsShard& s) -> const std::uint64_t* {
        return s.impl_->blocks[f.id].load(std::memory_order_acquire);
      };
      for (std::size_t k = 0; k < f.series.size(); ++k) {
        sum_series(f, impl_->shards, static_cast<std::uint32_t>(k), ints, doubles, block_of);
        render_series(out, f, f.series[k], ints, doubles);
      }
      if (f.overflow_used) {
        sum_series(f, impl_->shards, f.overflow_index(), ints, doubles, block_of);
        render_series(out, f, std::vector<std::string>(f.labels.size(), std::string(kOverflowValue)), ints, doubles);
      }
    }
  }
  // Callbacks run without the registry's lock: they may read other components, which may in turn
  // declare or update metrics.
  for (const auto& job : jobs) render_callbacks(parts[job.part], job);
  std::string out;
  std::size_t size = 0;
  for (const auto& p : parts) size += p.size();
  out.reserve(size);
  for (const auto& p : parts) out += p;
  return out;
}

}  // namespace gatehouse
