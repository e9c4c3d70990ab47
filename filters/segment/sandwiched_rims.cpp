#include "filters/segment/sandwiched_rims.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

#include <tbb/parallel_for.h>

#include "filters/segment/features.h"

namespace vp {
namespace {

constexpr index_t kRimSlab = 32;  // z-slices of smoothed grey held at once

}  // namespace

unsigned rim_decisions(double g, int m, const std::vector<double>& centre) {
  const int k = static_cast<int>(centre.size());
  unsigned bits = 0;
  for (int dark = 0; dark < m; ++dark)
    for (int bright = m + 1; bright < k; ++bright)
      if (std::fabs(g - centre[dark]) <= std::fabs(g - centre[bright])) bits |= 1u << rim_pair_bit(dark, bright, m, k);
  return bits;
}

std::int64_t relabel_sandwiched_rims(Volume<std::uint8_t>& labels, const Volume<float>& grey, double sigma_um,
                                     const std::vector<double>& centre, bool decided) {
  const int k = static_cast<int>(centre.size());
  if (k < 3) return 0;
  const Volume<std::uint8_t> in = labels;
  const Dims d = in.dims();
  constexpr int kLabel = (1 << kRimBits) - 1;
  std::vector<std::int64_t> changed(static_cast<std::size_t>(d.z), 0);
  std::optional<GaussianSlabs> smoothed;
  if (!decided) smoothed.emplace(grey, sigma_um);
  for (index_t z0 = 0; z0 < d.z; z0 += kRimSlab) {
    const index_t z1 = std::min(d.z, z0 + kRimSlab);
    if (smoothed) smoothed->smooth(z0, z1);
    tbb::parallel_for(z0, z1, [&](index_t z) {
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          const index_t i = x + d.x * (y + d.y * z);
          const int m = in[i] & kLabel;
          if (decided) labels[i] = static_cast<std::uint8_t>(m);
          if (m == 0 || m == k - 1) continue;
          const index_t pos[3] = {x, y, z}, step[3] = {1, d.x, d.x * d.y};
          for (int a = 0; a < 3; ++a) {
            // Outer labels of the run of m through i along this axis (runs of at most 2).
            index_t lo = pos[a] - 1, hi = pos[a] + 1;
            while (lo >= 0 && hi - lo - 1 < kMaxRimRun && (in[i + (lo - pos[a]) * step[a]] & kLabel) == m) --lo;
            while (hi < d[a] && hi - lo - 1 < kMaxRimRun && (in[i + (hi - pos[a]) * step[a]] & kLabel) == m) ++hi;
            if (lo < 0 || hi >= d[a]) continue;
            const int before = in[i + (lo - pos[a]) * step[a]] & kLabel,
                      after = in[i + (hi - pos[a]) * step[a]] & kLabel;
            const int dark = std::min(before, after), bright = std::max(before, after);
            if (!(dark < m && bright > m)) continue;
            const bool darker =
                decided ? (in[i] >> kRimBits >> rim_pair_bit(dark, bright, m, k)) & 1u
                        : (rim_decisions((*smoothed)[i], m, centre) >> rim_pair_bit(dark, bright, m, k)) & 1u;
            labels[i] = static_cast<std::uint8_t>(darker ? dark : bright);
            ++changed[static_cast<std::size_t>(z)];
            break;
          }
        }
    });
  }
  return std::accumulate(changed.begin(), changed.end(), std::int64_t{0});
}
}  // namespace vp
