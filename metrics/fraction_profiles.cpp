#include "metrics/fraction_profiles.h"

#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include <tbb/blocked_range.h>
#include <tbb/combinable.h>
#include <tbb/parallel_for.h>

#include "metrics/interfaces.h"
#include "metrics/phase_fractions.h"

namespace vp {

double porosity(const LabelVolume& labels) {
  PhaseFractions f = phase_fractions(labels);
  return f.role_fraction(Role::pore) + f.role_fraction(Role::crack);
}

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
    return Pair(std::vector<index_t>(static_cast<std::size_t>(d.x) * np, 0), std::vector<index_t>(static_cast<std::size_t>(d.y) * np, 0));
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

namespace {

// Every REV metric of one (sub-)volume, keyed (metric, phase).
std::map<std::pair<std::string, std::string>, double> rev_metrics(const LabelVolume& lv) {
  std::map<std::pair<std::string, std::string>, double> m;
  PhaseFractions f = phase_fractions(lv);
  for (const auto& p : f.phases) m[{"volume_fraction", p.phase}] = p.fraction;
  m[{"porosity", ""}] = f.role_fraction(Role::pore) + f.role_fraction(Role::crack);
  InterfaceAreas areas = interface_areas(lv);
  const auto& phases = lv.phases.phases();
  for (std::size_t i = 0; i < phases.size(); ++i)
    for (std::size_t j = i + 1; j < phases.size(); ++j)
      m[{"specific_interface_area", phases[i].name + "|" + phases[j].name}] =
          areas.area(phases[i].label, phases[j].label) / areas.volume_um3;
  if (!lv.phases.by_role(Role::active).empty() && !lv.phases.by_role(Role::electrolyte).empty())
    m[{"contact_area_fraction", ""}] = contact_area(areas, lv.phases).fraction;
  return m;
}

std::string rev_unit(const std::string& metric) { return metric == "specific_interface_area" ? "µm^-1" : "1"; }

}  // namespace

std::vector<RevSeries> rev_study(const LabelVolume& labels) {
  const Dims d = labels.dims();
  auto whole = rev_metrics(labels);
  std::map<std::pair<std::string, std::string>, RevSeries> series;
  for (const auto& [key, value] : whole) {
    RevSeries& s = series[key];
    s.metric = key.first;
    s.phase = key.second;
    s.unit = rev_unit(key.first);
    s.value = value;
    s.uncertainty = std::numeric_limits<double>::quiet_NaN();
  }
  for (int k : {2, 3, 4}) {
    if (d.x / k < 2 || d.y / k < 2 || d.z / k < 2) continue;
    // Tiles in raster order; each computed with the library's own parallel loops.
    std::vector<std::map<std::pair<std::string, std::string>, double>> tiles;
    for (int tz = 0; tz < k; ++tz)
      for (int ty = 0; ty < k; ++ty)
        for (int tx = 0; tx < k; ++tx) {
          Box b;
          const int t[3] = {tx, ty, tz};
          for (int a = 0; a < 3; ++a) {
            b.min[a] = d[a] * t[a] / k;
            b.size[a] = d[a] * (t[a] + 1) / k - b.min[a];
          }
          LabelVolume tile(labels.crop(b), labels.phases);
          tiles.push_back(rev_metrics(tile));
        }
    for (auto& [key, s] : series) {
      std::vector<double> values;
      for (const auto& t : tiles) {
        auto it = t.find(key);
        if (it != t.end() && std::isfinite(it->second)) values.push_back(it->second);
      }
      Distribution dist = summarize(values);
      RevPoint p;
      p.divisions = k;
      for (int a = 0; a < 3; ++a) p.edge_um[a] = static_cast<double>(d[a] / k) * labels.spacing_um[a];
      p.tiles = static_cast<int>(dist.count);
      p.mean = dist.mean;
      p.std = dist.std;
      s.points.push_back(p);
      if (k == 2 && dist.count > 0) s.uncertainty = dist.std / std::sqrt(static_cast<double>(dist.count));
    }
  }
  std::vector<RevSeries> out;
  for (auto& [key, s] : series) out.push_back(std::move(s));
  return out;
}

}  // namespace vp
