#include "metrics/rev.h"

#include <cmath>
#include <limits>
#include <map>

#include "metrics/distribution.h"
#include "metrics/interfaces.h"
#include "metrics/phase_fractions.h"

namespace vp {

namespace {

// Every REV metric of one (sub-)volume, keyed (metric, phase).
std::map<std::pair<std::string, std::string>, double> rev_metrics(const LabelVolume& lv) {
  std::map<std::pair<std::string, std::string>, double> m;
  PhaseFractions f = phase_fractions(lv);
  for (const auto& p : f.phases) m[{"volume_fraction", p.phase}] = p.fraction;
  m[{"porosity", ""}] = porosity(f);
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
