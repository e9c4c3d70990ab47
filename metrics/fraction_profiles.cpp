#include "metrics/fraction_profiles.h"

#include <array>

#include <tbb/blocked_range.h>
#include <tbb/combinable.h>
#include <tbb/parallel_for.h>

#include "metrics/distribution.h"

namespace vp {

std::vector<FractionProfile> fraction_profiles(const LabelVolume& labels) {
  const Dims d = labels.dims();
  std::vector<FractionProfile> out;
  if (labels.empty()) return out;
  const auto& phases = labels.phases.phases();
  const std::size_t np = phases.size();
  std::array<int, 256> slot;
  slot.fill(-1);
  for (std::size_t k = 0; k < np; ++k) slot[static_cast<std::size_t>(phases[k].label)] = static_cast<int>(k);
  // counts[axis][slice * np + phase]: z slices are owned by one task each; x and y slices are
  // summed over per-thread copies (integer sums: the same for any thread count).
  std::array<std::vector<index_t>, 3> counts;
  for (int a = 0; a < 3; ++a) counts[a].assign(static_cast<std::size_t>(d[a]) * np, 0);
  using Pair = std::pair<std::vector<index_t>, std::vector<index_t>>;
  tbb::combinable<Pair> xy([&] {
    return Pair(std::vector<index_t>(static_cast<std::size_t>(d.x) * np, 0),
                std::vector<index_t>(static_cast<std::size_t>(d.y) * np, 0));
  });
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& r) {
    Pair& local = xy.local();
    for (index_t z = r.begin(); z != r.end(); ++z)
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          int k = slot[labels(x, y, z)];
          if (k < 0) continue;
          ++local.first[static_cast<std::size_t>(x) * np + k];
          ++local.second[static_cast<std::size_t>(y) * np + k];
          ++counts[2][static_cast<std::size_t>(z) * np + k];
        }
  });
  xy.combine_each([&](const Pair& p) {
    for (std::size_t i = 0; i < p.first.size(); ++i) counts[0][i] += p.first[i];
    for (std::size_t i = 0; i < p.second.size(); ++i) counts[1][i] += p.second[i];
  });
  for (std::size_t k = 0; k < np; ++k)
    for (int a = 0; a < 3; ++a) {
      FractionProfile f;
      f.phase = phases[k].name;
      f.label = phases[k].label;
      f.axis = a;
      const double slice_voxels = static_cast<double>(d.count() / d[a]);
      for (index_t i = 0; i < d[a]; ++i) {
        f.fraction.push_back(static_cast<double>(counts[a][static_cast<std::size_t>(i) * np + k]) / slice_voxels);
        f.position_um.push_back(labels.origin_um[a] + static_cast<double>(i) * labels.spacing_um[a]);
      }
      Distribution s = summarize(f.fraction);
      f.min = s.min;
      f.max = s.max;
      f.std = s.std;
      out.push_back(std::move(f));
    }
  return out;
}

}  // namespace vp
