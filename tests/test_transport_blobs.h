// Random-blob two-phase structures for the transport tests and benchmark: white noise
// (counter-based, so independent of thread count), box-blurred `passes` times with radius
// `radius` voxels along each axis, thresholded so that `fraction` of the voxels carry label 1.
// The feature size is set by the blur, not by the volume size, so larger volumes hold more
// blobs of the same size (the right test of multigrid scaling).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include <tbb/parallel_for.h>

#include "core/volume.h"
#include "phantoms/random.h"

namespace vp::test {

inline void box_blur_axis(Volume<float>& f, int axis, int radius) {
  const Dims d = f.dims();
  const index_t n = d[axis];
  const index_t stride = axis == 0 ? 1 : axis == 1 ? d.x : d.x * d.y;
  const index_t lines = d.count() / n;
  tbb::parallel_for(index_t(0), lines, [&](index_t line) {
    // Start of the line: decompose `line` over the two other axes.
    index_t start;
    if (axis == 0) start = line * d.x;
    else if (axis == 1) start = (line % d.x) + (line / d.x) * d.x * d.y;
    else start = line;
    std::vector<float> in(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) in[i] = f[start + i * stride];
    double sum = 0;
    index_t lo = 0, hi = -1;  // window [lo, hi] clamped to the line
    for (index_t i = 0; i < n; ++i) {
      const index_t want_hi = std::min(n - 1, i + radius), want_lo = std::max<index_t>(0, i - radius);
      while (hi < want_hi) sum += in[++hi];
      while (lo < want_lo) sum -= in[lo++];
      f[start + i * stride] = static_cast<float>(sum / static_cast<double>(hi - lo + 1));
    }
  });
}

inline Volume<std::uint8_t> random_blobs(Dims dims, double fraction, std::uint64_t seed, int radius = 2,
                                         int passes = 2) {
  Volume<float> f(dims);
  tbb::parallel_for(index_t(0), dims.count(), [&](index_t i) {
    f[i] = static_cast<float>(phantom::unit_double(phantom::hash3(seed, 7, static_cast<std::uint64_t>(i))));
  });
  for (int p = 0; p < passes; ++p)
    for (int a = 0; a < 3; ++a)
      if (dims[a] > 1) box_blur_axis(f, a, radius);
  // Threshold at the `fraction` quantile via a fine histogram of the blurred values.
  const auto [mn, mx] = std::minmax_element(f.storage().begin(), f.storage().end());
  const double lo = *mn, span = std::max(1e-30, static_cast<double>(*mx) - lo);
  constexpr int kBins = 1 << 16;
  std::vector<index_t> hist(kBins, 0);
  auto bin = [&](float v) { return std::min(kBins - 1, static_cast<int>((v - lo) / span * kBins)); };
  for (index_t i = 0; i < f.size(); ++i) ++hist[bin(f[i])];
  const auto want = static_cast<index_t>(fraction * static_cast<double>(f.size()));
  int cut = 0;
  for (index_t acc = 0; cut < kBins && acc + hist[cut] <= want; ++cut) acc += hist[cut];
  Volume<std::uint8_t> labels(dims);
  tbb::parallel_for(index_t(0), dims.count(), [&](index_t i) { labels[i] = bin(f[i]) < cut ? 1 : 0; });
  return labels;
}

}  // namespace vp::test
