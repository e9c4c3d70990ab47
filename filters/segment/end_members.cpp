#include "filters/segment/end_members.h"

#include <algorithm>
#include <cmath>

#include <tbb/parallel_for.h>

#include "core/error.h"
#include "core/gaussian.h"
#include "core/random.h"

namespace vp {

namespace {

// The phantoms' PSF cut-off (phantoms/imaging.cpp): the same operator as the scans it imitates.
constexpr double kBlurTruncate = 3.0;
// The stream number of the phantoms' imaging noise (phantom::kStreamNoise), kept so that the
// simulated scans draw the noise they drew when this lived beside the phantoms.
constexpr std::uint64_t kSimulatedNoiseStream = 8;

}  // namespace

Box central_block(Dims d, index_t max_side) {
  const index_t side = std::max<index_t>(max_side, 1);
  Box box;
  for (int a = 0; a < 3; ++a) {
    box.size[a] = std::min(d[a], side);
    box.min[a] = (d[a] - box.size[a]) / 2;
  }
  return box;
}

Volume<float> simulated_scan(const Volume<std::uint8_t>& labels, const std::vector<double>& mu,
                             const SimulatedScanOptions& o) {
  const Box box = central_block(labels.dims(), o.max_side);
  const Dims b{box.size[0], box.size[1], box.size[2]};
  const index_t x0 = box.min[0], y0 = box.min[1], z0 = box.min[2];
  Volume<float> g = labels.like<float>(b);
  const auto k = static_cast<int>(mu.size());
  tbb::parallel_for(index_t{0}, b.z, [&](index_t z) {
    for (index_t y = 0; y < b.y; ++y)
      for (index_t x = 0; x < b.x; ++x) {
        const int c = labels(x + x0, y + y0, z + z0);
        if (c >= k) throw ComputeError("simulated scan: label " + std::to_string(c) + " without an end member");
        g(x, y, z) = static_cast<float>(mu[c]);
      }
  });
  for (int a = 0; a < 3; ++a) gaussian_blur_axis(g, a, o.psf_sigma_vox[a], kBlurTruncate);
  // Rounding adds 1/12 grey² of variance, already in an integer scan's measured noise σ.
  const double var = o.noise_sigma * o.noise_sigma - (o.integral ? 1.0 / 12 : 0.0);
  const double sigma = std::sqrt(std::max(var, 0.0));
  tbb::parallel_for(index_t{0}, b.z, [&](index_t z) {
    for (index_t y = 0; y < b.y; ++y)
      for (index_t x = 0; x < b.x; ++x) {
        const index_t i = x + b.x * (y + b.y * z);
        double v = g[i] + sigma * normal_at(o.seed, kSimulatedNoiseStream, static_cast<std::uint64_t>(i));
        if (o.integral) v = std::round(v);
        g[i] = static_cast<float>(v);
      }
  });
  return g;
}

std::vector<double> split_by_grey_mean(const std::vector<double>& fractions, const std::vector<double>& means,
                                       double grey_mean, int moved) {
  const int k = static_cast<int>(means.size());
  if (static_cast<int>(fractions.size()) != k || moved <= 0 || moved >= k || !(means[moved] > means[0]))
    throw ComputeError("grey-mean split: class " + std::to_string(moved) + " of " + std::to_string(k) +
                       " is not brighter than the darkest");
  double kept = 0, kept_grey = 0;
  for (int c = 1; c < k; ++c)
    if (c != moved) kept += fractions[c], kept_grey += fractions[c] * means[c];
  // φ_0 + φ_m = 1 − kept and φ_0 μ_0 + φ_m μ_m = grey_mean − kept_grey.
  std::vector<double> f = fractions;
  f[0] = ((1 - kept) * means[moved] + kept_grey - grey_mean) / (means[moved] - means[0]);
  f[moved] = 1 - kept - f[0];
  return f;
}

}  // namespace vp
