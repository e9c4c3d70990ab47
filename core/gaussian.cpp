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

std::vector<double> gaussian_taps(double sigma, double truncate) {
  if (!(sigma > 0)) return {1.0};
  const int radius = static_cast<int>(std::ceil(truncate * sigma));
  std::vector<double> k(2 * radius + 1);
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) sum += k[i + radius] = std::exp(-0.5 * i * i / (sigma * sigma));
  for (double& x : k) x /= sum;
  return k;
}

void gaussian_blur_axis(Volume<float>& v, int axis, double sigma, double truncate) {
  if (!(sigma > 0)) return;
  const Dims d = v.dims();
  const std::vector<double> k = gaussian_taps(sigma, truncate);
  const int radius = static_cast<int>(k.size() / 2);
  for_each_line_group(d, axis, [&](auto width, index_t base, index_t w, index_t n, index_t stride) {
    blur_lines<decltype(width)::value>(v, base, w, n, stride, k, radius);
  });
}

}  // namespace vp
