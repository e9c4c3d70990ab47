#include "metrics/particle_sizes.h"

#include <array>
#include <cmath>
#include <unordered_map>

#include "core/error.h"

namespace vp {

ParticleSizes particle_sizes(const LabelVolume& labels, const Volume<std::uint32_t>& particles) {
  if (!(particles.dims() == labels.dims()))
    throw InputError("particle labels are " + to_string(particles.dims()) + " but phase labels are " +
                     to_string(labels.dims()) + ": expected the same dimensions");
  const Dims d = labels.dims();
  struct Acc {
    std::int64_t voxels = 0;
    std::unordered_map<int, std::int64_t> per_label;
    bool border = false;
  };
  std::map<std::uint32_t, Acc> acc;  // ordered by id
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        std::uint32_t id = particles(x, y, z);
        if (id == 0) continue;
        Acc& a = acc[id];
        ++a.voxels;
        ++a.per_label[labels(x, y, z)];
        if (x == 0 || y == 0 || z == 0 || x == d.x - 1 || y == d.y - 1 || z == d.z - 1) a.border = true;
      }
  const Vec3 h = labels.spacing_um;
  const double voxel_volume = h[0] * h[1] * h[2];
  ParticleSizes out;
  std::map<std::string, std::vector<double>> diameters;
  for (const auto& [id, a] : acc) {
    int label = 0;
    std::int64_t best = -1;
    for (const auto& [l, n] : a.per_label)
      if (n > best || (n == best && l < label)) best = n, label = l;
    const Phase* p = labels.phases.by_label(label);
    ParticleSize s;
    s.id = id;
    s.phase = p ? p->name : "phase" + std::to_string(label);
    s.voxels = a.voxels;
    s.volume_um3 = static_cast<double>(a.voxels) * voxel_volume;
    s.equivalent_diameter_um = std::cbrt(6.0 * s.volume_um3 / M_PI);
    s.touches_border = a.border;
    PhaseParticleSizes& ps = out.by_phase[s.phase];
    if (s.touches_border) {
      ++ps.border_count;
    } else {
      ++ps.count;
      diameters[s.phase].push_back(s.equivalent_diameter_um);
    }
    out.particles.push_back(s);
  }
  for (auto& [phase, ps] : out.by_phase) ps.equivalent_diameter_um = summarize(diameters[phase]);
  return out;
}

}  // namespace vp
