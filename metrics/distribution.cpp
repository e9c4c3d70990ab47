#include "metrics/distribution.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace vp {

double percentile_sorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return std::numeric_limits<double>::quiet_NaN();
  double pos = q / 100.0 * static_cast<double>(sorted.size() - 1);
  auto lo = static_cast<std::size_t>(std::floor(pos));
  std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  double t = pos - static_cast<double>(lo);
  return sorted[lo] + t * (sorted[hi] - sorted[lo]);
}

Distribution summarize_counts(const std::vector<ValueCount>& ascending) {
  std::vector<ValueCount> runs;
  for (const ValueCount& r : ascending)
    if (std::isfinite(r.value) && r.count > 0) runs.push_back(r);
  Distribution d;
  for (const ValueCount& r : runs) d.count += r.count;
  if (runs.empty()) {
    double nan = std::numeric_limits<double>::quiet_NaN();
    d.mean = d.std = d.min = d.p10 = d.p25 = d.median = d.p75 = d.p90 = d.max = nan;
    return d;
  }
  double sum = 0;
  for (const ValueCount& r : runs)
    for (std::int64_t k = 0; k < r.count; ++k) sum += r.value;  // as summarize() adds them
  d.mean = sum / static_cast<double>(d.count);
  double ss = 0;
  for (const ValueCount& r : runs) {
    const double dev2 = (r.value - d.mean) * (r.value - d.mean);
    for (std::int64_t k = 0; k < r.count; ++k) ss += dev2;
  }
  d.std = std::sqrt(ss / static_cast<double>(d.count));
  d.min = runs.front().value;
  d.max = runs.back().value;
  // The value at sorted position i (0-based).
  auto at = [&](std::int64_t i) {
    for (const ValueCount& r : runs) {
      if (i < r.count) return r.value;
      i -= r.count;
    }
    return runs.back().value;
  };
  auto percentile = [&](double q) {  // percentile_sorted() over the expanded sample
    double pos = q / 100.0 * static_cast<double>(d.count - 1);
    auto lo = static_cast<std::int64_t>(std::floor(pos));
    std::int64_t hi = std::min(lo + 1, d.count - 1);
    double t = pos - static_cast<double>(lo);
    return at(lo) + t * (at(hi) - at(lo));
  };
  d.p10 = percentile(10);
  d.p25 = percentile(25);
  d.median = percentile(50);
  d.p75 = percentile(75);
  d.p90 = percentile(90);
  return d;
}

Distribution summarize(std::vector<double> values) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }), values.end());
  Distribution d;
  d.count = static_cast<std::int64_t>(values.size());
  if (values.empty()) {
    double nan = std::numeric_limits<double>::quiet_NaN();
    d.mean = d.std = d.min = d.p10 = d.p25 = d.median = d.p75 = d.p90 = d.max = nan;
    return d;
  }
  std::sort(values.begin(), values.end());
  double sum = 0;
  for (double v : values) sum += v;  // sorted order: the same sum for any thread count
  d.mean = sum / static_cast<double>(values.size());
  double ss = 0;
  for (double v : values) ss += (v - d.mean) * (v - d.mean);
  d.std = std::sqrt(ss / static_cast<double>(values.size()));
  d.min = values.front();
  d.max = values.back();
  d.p10 = percentile_sorted(values, 10);
  d.p25 = percentile_sorted(values, 25);
  d.median = percentile_sorted(values, 50);
  d.p75 = percentile_sorted(values, 75);
  d.p90 = percentile_sorted(values, 90);
  return d;
}

}  // namespace vp
