#include "dvc/particles.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <tbb/parallel_for.h>

#include "core/error.h"
#include "dvc/bspline.h"
#include "dvc/subset_match.h"
#include "filters/preprocess/psf.h"

namespace vp::dvc {

namespace {

struct Extent {
  std::array<index_t, 3> lo{std::numeric_limits<index_t>::max(), std::numeric_limits<index_t>::max(),
                            std::numeric_limits<index_t>::max()};
  std::array<index_t, 3> hi{-1, -1, -1};
  index_t voxels = 0;
  Vec3 sum{0, 0, 0};
};

// Voxels of particle `id` dilated by `m` (box structuring element, separable max) inside the
// volume's interior 1 … n−2.
std::vector<std::array<index_t, 3>> shell_points(const Volume<std::uint32_t>& ids, std::uint32_t id, const Extent& e,
                                                 index_t m) {
  const Dims& d = ids.dims();
  std::array<index_t, 3> lo, size;
  for (int a = 0; a < 3; ++a) {
    lo[a] = std::max<index_t>(1, e.lo[a] - m);
    size[a] = std::min<index_t>(d[a] - 2, e.hi[a] + m) - lo[a] + 1;
  }
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(size[0] * size[1] * size[2]), 0), tmp;
  auto at = [&](index_t x, index_t y, index_t z) { return static_cast<std::size_t>(x + size[0] * (y + size[1] * z)); };
  for (index_t z = 0; z < size[2]; ++z)
    for (index_t y = 0; y < size[1]; ++y)
      for (index_t x = 0; x < size[0]; ++x) mask[at(x, y, z)] = ids(lo[0] + x, lo[1] + y, lo[2] + z) == id;
  for (int a = 0; a < 3; ++a) {
    tmp = mask;
    for (index_t z = 0; z < size[2]; ++z)
      for (index_t y = 0; y < size[1]; ++y)
        for (index_t x = 0; x < size[0]; ++x) {
          if (!tmp[at(x, y, z)]) continue;
          index_t p[3] = {x, y, z};
          for (index_t s = -m; s <= m; ++s) {
            index_t q[3] = {p[0], p[1], p[2]};
            q[a] += s;
            if (q[a] >= 0 && q[a] < size[a]) mask[at(q[0], q[1], q[2])] = 1;
          }
        }
  }
  std::vector<std::array<index_t, 3>> points;
  for (index_t z = 0; z < size[2]; ++z)
    for (index_t y = 0; y < size[1]; ++y)
      for (index_t x = 0; x < size[0]; ++x)
        if (mask[at(x, y, z)]) points.push_back({lo[0] + x, lo[1] + y, lo[2] + z});
  return points;
}

}  // namespace

std::vector<ParticleMotion> track_particles(const Volume<float>& ref, const Volume<float>& def,
                                            const Volume<std::uint32_t>& ids, const AffineWarp& start,
                                            const ParticleOptions& o) {
  if (!(ids.dims() == ref.dims()) || !(def.dims() == ref.dims()))
    throw InputError("dvc: the particle ids (" + to_string(ids.dims()) + ") and the scans (" + to_string(ref.dims()) +
                     ", " + to_string(def.dims()) + ") differ in size");
  std::map<std::uint32_t, Extent> extents;
  const Dims& d = ids.dims();
  for (index_t z = 0; z < d.z; ++z)
    for (index_t y = 0; y < d.y; ++y)
      for (index_t x = 0; x < d.x; ++x) {
        const std::uint32_t id = ids(x, y, z);
        if (id == 0) continue;
        Extent& e = extents[id];
        const index_t p[3] = {x, y, z};
        for (int a = 0; a < 3; ++a) {
          e.lo[a] = std::min(e.lo[a], p[a]);
          e.hi[a] = std::max(e.hi[a], p[a]);
          e.sum[a] += static_cast<double>(p[a]);
        }
        ++e.voxels;
      }
  std::vector<std::pair<std::uint32_t, Extent>> list(extents.begin(), extents.end());
  std::vector<ParticleMotion> out(list.size());
  const std::array<double, 3> smooth{o.presmooth_sigma, o.presmooth_sigma, o.presmooth_sigma};
  const Volume<float> rsm = gaussian_blur(ref, smooth), dsm = gaussian_blur(def, smooth);
  const BSplineVolume rs(rsm), ds(dsm);
  tbb::parallel_for(std::size_t{0}, list.size(), [&](std::size_t k) {
    const auto& [id, e] = list[k];
    ParticleMotion& p = out[k];
    p.id = id;
    p.voxels = e.voxels;
    for (int a = 0; a < 3; ++a) p.centroid_vox[a] = e.sum[a] / static_cast<double>(e.voxels);
    if (e.voxels < o.min_voxels) {
      p.status = "too_small";
      p.residual = std::numeric_limits<double>::quiet_NaN();
      return;
    }
    const SubsetTemplate tpl = make_template(rsm, rs, p.centroid_vox, shell_points(ids, id, e, o.margin));
    MatchOptions mo;
    mo.max_iterations = o.max_iterations;
    mo.allow_partial = true;  // a border particle keeps the points that stay in the scan
    mo.rigid = true;          // particles move as rigid bodies; a shape change shows up in the residual
    const MatchResult m = match_subset(tpl, ds, start.recentred(p.centroid_vox), mo);
    p.residual = m.residual;
    if (m.status != MatchStatus::converged) {
      p.status = m.status == MatchStatus::outside ? "outside" : "not_converged";
      return;
    }
    p.displacement_vox = m.warp.t;
    p.rotation_deg = rotation_vector_deg(polar_rotation(m.warp.f));
    p.rotation_angle_deg = std::sqrt(p.rotation_deg[0] * p.rotation_deg[0] + p.rotation_deg[1] * p.rotation_deg[1] +
                                     p.rotation_deg[2] * p.rotation_deg[2]);
  });
  std::vector<double> residuals;
  for (const auto& p : out)
    if (p.tracked()) residuals.push_back(p.residual);
  if (!residuals.empty()) {
    std::sort(residuals.begin(), residuals.end());
    const double limit = o.jump_ratio * residuals[residuals.size() / 2];
    for (auto& p : out) p.residual_jump = p.tracked() && p.residual > limit;
  }
  return out;
}

}  // namespace vp::dvc
