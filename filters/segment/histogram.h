// Grey-value histograms and the intensity classifiers that work on them:
// manual thresholds, Otsu / multi-Otsu, k-means and Gaussian mixtures on intensity,
// hysteresis. Labels are always ordered by increasing mean grey value (0 = darkest).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/volume.h"

namespace vp {

// Equal-width bins over [lo, hi]; values outside are clamped into the end bins.
struct Histogram {
  double lo = 0, hi = 1;
  std::vector<double> counts;
  double bin_width() const { return (hi - lo) / static_cast<double>(counts.size()); }
  double centre(std::size_t bin) const { return lo + (static_cast<double>(bin) + 0.5) * bin_width(); }
  double upper_edge(std::size_t bin) const { return lo + static_cast<double>(bin + 1) * bin_width(); }
  std::size_t bin_of(double v) const;
  double total() const;
};

// Histogram over the volume's own [min, max] (a constant volume gets [v, v + 1]). Integer-valued
// volumes spanning at most `bins` levels get one bin per level instead ([min − ½, max + ½]).
Histogram histogram(const Volume<float>& grey, int bins = 256);
Histogram histogram(const Volume<float>& grey, int bins, double lo, double hi);

// Label = number of thresholds t with value >= t (thresholds ascending), so k-1 thresholds give
// labels 0..k-1. Throws InputError when the thresholds are not strictly ascending.
Volume<std::uint8_t> apply_thresholds(const Volume<float>& grey, const std::vector<double>& thresholds);

// Multi-Otsu: the k-1 thresholds (bin upper edges) that maximise the between-class variance of
// the histogram, found exactly by dynamic programming over bin boundaries. classes >= 2.
std::vector<double> otsu_thresholds(const Histogram& h, int classes = 2);

// 1-D k-means (Lloyd) on the histogram from quantile starts; centres ascending.
// Thresholds are the midpoints between consecutive centres.
struct KMeansFit {
  std::vector<double> centres;
  std::vector<double> thresholds;
  int iterations = 0;
};
KMeansFit kmeans_intensity(const Histogram& h, int classes, int max_iterations = 200);

// Gaussian mixture fitted by EM on the histogram, started from the multi-Otsu classes;
// components ascending by mean. Each voxel takes the component of highest posterior.
struct GaussianMixture {
  std::vector<double> weights, means, sigmas;
  int iterations = 0;
  double log_likelihood = 0;                                  // per voxel, at the last iteration
  double density(std::size_t component, double value) const;  // weighted component density
  int classify(double value) const;                           // most probable component
  // Values where the most probable component changes, ascending (the decision boundaries).
  std::vector<double> boundaries(double lo, double hi, int samples = 4096) const;
};
GaussianMixture fit_gaussian_mixture(const Histogram& h, int classes, int max_iterations = 500,
                                     double tolerance = 1e-9);
Volume<std::uint8_t> classify_mixture(const Volume<float>& grey, const GaussianMixture& mixture);

// Hysteresis: 1 where value >= high, or value >= low and connected through voxels >= low to a
// voxel >= high (6- or 26-connectivity); 0 elsewhere.
Volume<std::uint8_t> hysteresis_threshold(const Volume<float>& grey, double low, double high, int connectivity = 6);

// σ of the histogram's highest peak from its half width at half maximum (the narrower side: the
// other carries the blends towards the neighbouring phase), less the bin's own width (Sheppard);
// 0 when the peak has no half-maximum crossing on either side. A phase's marginal grey spread,
// whatever the noise's spatial correlation (scan_noise in mixture_model.h).
double dominant_peak_sigma(const Histogram& h);

// The k-th smallest value (0-based: the one std::nth_element puts at position k) of `rows` rows
// of `width` values each, which row(r, out) writes to out[0..width): exact, and without a copy of
// the values — a radix select on their order-preserving bit patterns, three parallel passes of
// small histograms (12, 12, then 8 bits), so rows are made three times. Where a value is NaN,
// std::nth_element on a copy in row order. k < rows · width.
float kth_smallest(index_t rows, index_t width, std::int64_t k, const std::function<void(index_t, float*)>& row);

// kth_smallest with its ties: the value, how many values lie below it and how many have its bit
// pattern (the value's own count, k included). On grey confined to a lattice (integer scans) an
// order statistic is a lattice value, and its ties say how far into that value the rank falls.
struct OrderStatistic {
  float value = 0;
  std::int64_t below = 0;
  std::int64_t equal = 0;
};
OrderStatistic order_statistic(index_t rows, index_t width, std::int64_t k,
                               const std::function<void(index_t, float*)>& row);

// Mean grey value of each label (labels 0..n-1; NaN for labels absent).
std::vector<double> label_means(const Volume<float>& grey, const Volume<std::uint8_t>& labels, int n);

}  // namespace vp
