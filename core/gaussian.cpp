#include "core/gaussian.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <tbb/parallel_for.h>

namespace vp {

namespace {

// The clamped convolution of `width` neighbouring lines (consecutive x, `w` ≤ width of them inside
// the volume) starting at voxel `base`, the taps k of half-width r.
template <index_t width>
void blur_lines(Volume<float>& v, index_t base, index_t w, index_t n, index_t stride, const std::vector<double>& k,
                int r) {
  std::vector<double> in(static_cast<std::size_t>(n * width), 0.0);
  for (index_t i = 0; i < n; ++i)
    for (index_t u = 0; u < w; ++u) in[i * width + u] = v[base + i * stride + u];
  for (index_t i = 0; i < n; ++i) {
    double acc[width] = {};
    for (int j = -r; j <= r; ++j) {
      const double kj = k[j + r];
      const double* p = &in[std::clamp<index_t>(i + j, 0, n - 1) * width];
      for (index_t u = 0; u < width; ++u) acc[u] += kj * p[u];
    }
    for (index_t u = 0; u < w; ++u) v[base + i * stride + u] = static_cast<float>(acc[u]);
  }
}

}  // namespace

void gaussian_blur_axis(Volume<float>& v, int axis, double sigma, double truncate) {
  if (!(sigma > 0)) return;
  const Dims d = v.dims();
  const int radius = static_cast<int>(std::ceil(truncate * sigma));
  std::vector<double> k(2 * radius + 1);
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) sum += k[i + radius] = std::exp(-0.5 * i * i / (sigma * sigma));
  for (double& x : k) x /= sum;
  const index_t n = d[axis];
  if (axis == 0) {
    tbb::parallel_for(index_t{0}, d.y * d.z, [&](index_t line) { blur_lines<1>(v, line * d.x, 1, n, 1, k, radius); });
    return;
  }
  // Along y and z the lines are strided: kWidth neighbouring lines (consecutive x) go together, so
  // that each read and write touches kWidth floats of a row rather than one per cache line. Every
  // voxel's sum is the same taps in the same order as along x, so the result does not change.
  constexpr index_t kWidth = 16;
  const index_t stride = axis == 1 ? d.x : d.x * d.y;
  const index_t groups_x = (d.x + kWidth - 1) / kWidth;
  tbb::parallel_for(index_t{0}, groups_x * (d.count() / (n * d.x)), [&](index_t g) {
    const index_t outer = g / groups_x, x0 = (g % groups_x) * kWidth;  // z (axis y) or y (axis z), x
    const index_t base = (axis == 1 ? outer * d.x * d.y : outer * d.x) + x0;
    blur_lines<kWidth>(v, base, std::min(kWidth, d.x - x0), n, stride, k, radius);
  });
}

}  // namespace vp
