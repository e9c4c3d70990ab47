#include "filters/preprocess/intensity.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "core/error.h"

namespace vp {

Volume<float> bin_mean(const Volume<float>& g, int f) {
  if (f < 1) throw InputError("binning factor must be >= 1, got " + std::to_string(f));
  const Dims d = g.dims();
  if (d.x < f || d.y < f || d.z < f)
    throw InputError("binning " + std::to_string(f) + "x: volume " + to_string(d) + " is smaller than one block");
  const Dims o{d.x / f, d.y / f, d.z / f};
  Volume<float> out = g.like<float>(o);
  for (int a = 0; a < 3; ++a) {
    out.spacing_um[a] = g.spacing_um[a] * f;
    // The bin's centre sits half a block from its first voxel's centre.
    out.origin_um[a] = g.origin_um[a] + 0.5 * (f - 1) * g.spacing_um[a];
  }
  const double inv = 1.0 / (static_cast<double>(f) * f * f);
  tbb::parallel_for(tbb::blocked_range<index_t>(0, o.z), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t z = r.begin(); z != r.end(); ++z)
      for (index_t y = 0; y < o.y; ++y)
        for (index_t x = 0; x < o.x; ++x) {
          double s = 0;
          for (int k = 0; k < f; ++k)
            for (int j = 0; j < f; ++j)
              for (int i = 0; i < f; ++i) s += g(x * f + i, y * f + j, z * f + k);
          out(x, y, z) = static_cast<float>(s * inv);
        }
  });
  return out;
}

double percentile(const Volume<float>& g, double p) {
  if (!(p >= 0 && p <= 1)) throw InputError("percentile must be in [0, 1], got " + std::to_string(p));
  if (g.empty()) throw InputError("percentile of an empty volume");
  std::vector<float> v = g.storage();
  const double pos = p * static_cast<double>(v.size() - 1);
  const auto k = static_cast<std::size_t>(std::floor(pos));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  const double a = v[k];
  if (k + 1 >= v.size()) return a;
  const double b = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(k) + 1, v.end());
  return a + (pos - static_cast<double>(k)) * (b - a);
}

NormaliseResult normalise_percentiles(const Volume<float>& g, double p_low, double p_high, bool clamp) {
  if (!(p_low < p_high)) throw InputError("normalisation: low percentile must be below the high one");
  NormaliseResult r;
  r.low_value = percentile(g, p_low);
  r.high_value = percentile(g, p_high);
  if (!(r.high_value > r.low_value))
    throw InputError("normalisation: percentiles " + std::to_string(p_low) + " and " + std::to_string(p_high) +
                     " have the same grey value " + std::to_string(r.low_value) + " (nearly constant image)");
  r.grey = g;
  const double lo = r.low_value, scale = 1.0 / (r.high_value - r.low_value);
  float* d = r.grey.data();
  tbb::parallel_for(tbb::blocked_range<index_t>(0, g.size(), 1 << 14), [&](const tbb::blocked_range<index_t>& rr) {
    for (index_t i = rr.begin(); i != rr.end(); ++i) {
      double v = (d[i] - lo) * scale;
      if (clamp) v = std::clamp(v, 0.0, 1.0);
      d[i] = static_cast<float>(v);
    }
  });
  return r;
}

}  // namespace vp
