#include "core/gaussian.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <tbb/parallel_for.h>

namespace vp {

void gaussian_blur_axis(Volume<float>& v, int axis, double sigma, double truncate) {
  if (!(sigma > 0)) return;
  const Dims d = v.dims();
  const int radius = static_cast<int>(std::ceil(truncate * sigma));
  std::vector<double> k(2 * radius + 1);
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) sum += k[i + radius] = std::exp(-0.5 * i * i / (sigma * sigma));
  for (double& x : k) x /= sum;
  const index_t n = d[axis];
  const index_t stride = axis == 0 ? 1 : axis == 1 ? d.x : d.x * d.y;
  const index_t lines = d.count() / n;
  tbb::parallel_for(index_t{0}, lines, [&](index_t line) {
    // The line's first voxel: enumerate the two other axes.
    index_t base;
    if (axis == 0) base = line * d.x;
    else if (axis == 1) base = (line / d.x) * d.x * d.y + line % d.x;
    else base = line;
    std::vector<double> in(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) in[i] = v[base + i * stride];
    for (index_t i = 0; i < n; ++i) {
      double acc = 0;
      for (int j = -radius; j <= radius; ++j) acc += k[j + radius] * in[std::clamp<index_t>(i + j, 0, n - 1)];
      v[base + i * stride] = static_cast<float>(acc);
    }
  });
}

}  // namespace vp
