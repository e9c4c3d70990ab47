// Summary statistics of a sample of values (thicknesses, ratios, sizes, per-particle fractions).
#pragma once

#include <cstdint>
#include <vector>

namespace vp {

struct Distribution {
  std::int64_t count = 0;
  double mean = 0, std = 0;  // std: population standard deviation (divide by count)
  double min = 0, p10 = 0, p25 = 0, median = 0, p75 = 0, p90 = 0, max = 0;
};

// Percentiles by linear interpolation between order statistics (numpy's default). Non-finite
// values are ignored. An empty sample gives count 0 and NaN statistics.
Distribution summarize(std::vector<double> values);

// summarize() of a sample given as its distinct values, ascending, each with its multiplicity:
// the same numbers bit for bit (the sums run over the same sorted sequence), in memory of the
// distinct values only (a thickness map has few: its values are ball diameters).
struct ValueCount {
  double value;
  std::int64_t count;
};
Distribution summarize_counts(const std::vector<ValueCount>& ascending);

// The q-th percentile (0..100) of sorted finite values, linear interpolation.
double percentile_sorted(const std::vector<double>& sorted, double q);

}  // namespace vp
