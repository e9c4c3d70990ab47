// voxpress info VOLUME [--json] [format flags]: dims, dtype, spacing, value range, histogram summary.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <optional>

#include "core/json_util.h"
#include "core/stage.h"
#include "pipeline/commands/cli_common.h"
#include "pipeline/commands/command_api.h"

namespace vp {

namespace {

struct GreyStats {
  index_t voxels = 0;
  double min = 0, max = 0, mean = 0, std = 0;   // std: population (divides by N)
  double p1 = 0, p50 = 0, p99 = 0;              // percentiles, linear between order statistics (numpy default)
  std::optional<std::vector<double>> distinct;  // when there are at most 16 distinct values
};

constexpr std::size_t kMaxDistinct = 16;

// The k-th smallest value (0-based) of the volume, through a sorted list of (value, count).
class OrderStatistics {
 public:
  explicit OrderStatistics(std::vector<std::pair<double, index_t>> counts) : counts_(std::move(counts)) {}
  double kth(index_t k) const {
    for (const auto& [v, n] : counts_) {
      if (k < n) return v;
      k -= n;
    }
    return counts_.back().first;
  }
  double percentile(double p, index_t n) const {
    const double rank = p / 100.0 * static_cast<double>(n - 1);
    const auto lo = static_cast<index_t>(std::floor(rank));
    const double a = kth(lo), b = kth(std::min(lo + 1, n - 1));
    return a + (rank - static_cast<double>(lo)) * (b - a);
  }
  const std::vector<std::pair<double, index_t>>& counts() const { return counts_; }

 private:
  std::vector<std::pair<double, index_t>> counts_;
};

template <class T>
std::vector<std::pair<double, index_t>> value_counts(const Volume<T>& v) {
  std::vector<std::pair<double, index_t>> out;
  if constexpr (sizeof(T) <= 2 && std::is_integral_v<T>) {
    // 8- and 16-bit volumes: one histogram pass, no copy.
    constexpr long long lowest = std::numeric_limits<T>::min();
    std::vector<index_t> hist(1u << (8 * sizeof(T)), 0);
    for (index_t i = 0; i < v.size(); ++i) ++hist[static_cast<std::size_t>(static_cast<long long>(v[i]) - lowest)];
    for (std::size_t b = 0; b < hist.size(); ++b)
      if (hist[b] > 0) out.emplace_back(static_cast<double>(static_cast<long long>(b) + lowest), hist[b]);
  } else {
    std::vector<T> sorted(v.data(), v.data() + v.size());
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < sorted.size();) {
      std::size_t j = i;
      while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
      out.emplace_back(static_cast<double>(sorted[i]), static_cast<index_t>(j - i));
      i = j;
    }
  }
  return out;
}

template <class T>
GreyStats grey_stats(const Volume<T>& v) {
  GreyStats s;
  s.voxels = v.size();
  if (s.voxels == 0) return s;
  const OrderStatistics order(value_counts(v));
  double sum = 0;
  for (const auto& [value, n] : order.counts()) sum += value * static_cast<double>(n);
  s.mean = sum / static_cast<double>(s.voxels);
  double sq = 0;
  for (const auto& [value, n] : order.counts()) sq += (value - s.mean) * (value - s.mean) * static_cast<double>(n);
  s.std = std::sqrt(sq / static_cast<double>(s.voxels));
  s.min = order.counts().front().first;
  s.max = order.counts().back().first;
  s.p1 = order.percentile(1, s.voxels);
  s.p50 = order.percentile(50, s.voxels);
  s.p99 = order.percentile(99, s.voxels);
  if (order.counts().size() <= kMaxDistinct) {
    s.distinct.emplace();
    for (const auto& [value, n] : order.counts()) s.distinct->push_back(value);
  }
  return s;
}

std::string num(double v) { return format_number(v); }

}  // namespace

nlohmann::json info_json(const ReadResult& r, const std::string& spacing_source) {
  const GreyStats s = std::visit([](const auto& v) { return grey_stats(v); }, r.volume);
  return {
      {"path", provenance_of(r.volume).path},
      {"sha256", provenance_of(r.volume).sha256},
      {"format", r.format},
      {"dims", to_json(dims_of(r.volume))},
      {"voxels", s.voxels},
      {"dtype", to_string(dtype_of(r.volume))},
      {"spacing_um", to_json(spacing_of(r.volume))},
      {"spacing_source", spacing_source},
      {"min", s.min},
      {"max", s.max},
      {"mean", s.mean},
      {"std", s.std},
      {"percentiles", {{"1", s.p1}, {"50", s.p50}, {"99", s.p99}}},
      {"distinct_values", s.distinct ? nlohmann::json(*s.distinct) : nlohmann::json(nullptr)},
  };
}

namespace {

int info_main(const std::vector<std::string>& args) {
  CLI::App app("Show a volume's dims, dtype, spacing, value range and histogram summary", "info");
  VolumeArgs volume;
  bool json = false;
  add_volume_flags(app, volume);
  app.add_flag("--json", json, "print one JSON object");
  if (parse_cli(app, args)) return 0;
  const ReadResult r = load_volume(volume);
  if (json) {
    std::cout << info_json(r, !volume.spacing.empty() ? "flag"
                              : r.spacing_from_file   ? "file"
                                                      : "default")
                     .dump(2)
              << "\n";
    return 0;
  }
  const GreyStats s = std::visit([](const auto& v) { return grey_stats(v); }, r.volume);
  const Dims& d = dims_of(r.volume);
  const Vec3& sp = spacing_of(r.volume);
  const bool spacing_known = r.spacing_from_file || !volume.spacing.empty();
  std::cout << "path         " << provenance_of(r.volume).path << "\n"
            << "format       " << r.format << "\n"
            << "dims         " << d.x << " x " << d.y << " x " << d.z << "  (x, y, z; " << s.voxels << " voxels)\n"
            << "dtype        " << to_string(dtype_of(r.volume)) << "\n"
            << "spacing      " << num(sp[0]) << " x " << num(sp[1]) << " x " << num(sp[2]) << " µm"
            << (spacing_known ? (volume.spacing.empty() ? "  (from the file)" : "  (from --spacing)")
                              : "  (not recorded in the file; 1 µm assumed — give voxel_size_um / --spacing)")
            << "\n"
            << "range        " << num(s.min) << " .. " << num(s.max) << "\n"
            << "mean, std    " << num(s.mean) << ", " << num(s.std) << "\n"
            << "percentiles  p1 " << num(s.p1) << ", p50 " << num(s.p50) << ", p99 " << num(s.p99) << "\n";
  if (s.distinct) {
    std::cout << "values       " << s.distinct->size() << " distinct:";
    for (double v : *s.distinct) std::cout << " " << num(v);
    std::cout << "\n";
  }
  std::cout << "sha256       " << provenance_of(r.volume).sha256 << "\n";
  return 0;
}

}  // namespace

Command make_info_command() { return {"info", "show a volume's dims, dtype, spacing and value statistics", info_main}; }

}  // namespace vp
