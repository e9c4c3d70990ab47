#include "metrics/cracks/facets.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "core/neighbourhood.h"
#include "filters/segment/cleanup.h"
#include "filters/segment/features.h"
#include "filters/segment/particles.h"
#include "metrics/cracks/shape.h"
#include "metrics/distance_transform.h"

namespace vp {

namespace {

// Grey noise σ of the host: the clipped RMS deviation from the median of host voxels whose six
// face neighbours at one and two voxels are host too (inside a particle, off its blurred rim).
double host_noise_sigma(const Volume<std::uint8_t>& labels, const Volume<float>& grey,
                        const std::array<bool, 256>& host) {
  const Dims d = labels.dims();
  std::vector<float> g;
  for (index_t z = 2; z + 2 < d.z; ++z)
    for (index_t y = 2; y + 2 < d.y; ++y)
      for (index_t x = 2; x + 2 < d.x; ++x) {
        const index_t i = labels.index(x, y, z);
        if (!host[labels[i]]) continue;
        bool deep = true;
        for (index_t k = 1; k <= 2 && deep; ++k)
          deep = host[labels[i + k]] && host[labels[i - k]] && host[labels[i + k * d.x]] && host[labels[i - k * d.x]] &&
                 host[labels[i + k * d.x * d.y]] && host[labels[i - k * d.x * d.y]];
        if (deep) g.push_back(grey[i]);
      }
  if (g.size() < 2) return 0;
  auto mid = g.begin() + static_cast<std::ptrdiff_t>(g.size() / 2);
  std::nth_element(g.begin(), mid, g.end());
  const float median = *mid;
  std::vector<float> dev(g.size());
  for (std::size_t k = 0; k < g.size(); ++k) dev[k] = std::abs(g[k] - median);
  std::nth_element(dev.begin(), dev.begin() + static_cast<std::ptrdiff_t>(dev.size() / 2), dev.end());
  // The RMS deviation within 3 robust σ (MAD), half a grey step added: a MAD of integer greys a
  // few steps wide is quantised (σ 0.9 read as 1.48).
  const double clip = 3 * (1.4826 * dev[dev.size() / 2] + 0.5);
  double sum = 0;
  std::size_t n = 0;
  for (float v : g)
    if (std::abs(v - median) <= clip) sum += (v - median) * (v - median), ++n;
  return n ? std::sqrt(sum / static_cast<double>(n)) : 0;
}

// Step 2 at voxel p (not host, or host darker than wall_above): the particle walling it, or 0.
std::uint32_t walling_particle(const Volume<std::uint8_t>& labels, const Volume<float>& grey,
                               const std::array<bool, 256>& host, const Volume<std::uint32_t>& particles,
                               const index_t p[3], double margin, double wall_above, const FacetOptions& o) {
  const Dims d = labels.dims();
  const int reach = o.max_opening_vox + o.wall_depth_vox;
  const float g = grey(p[0], p[1], p[2]);
  // Of the directions that wall it, the one closest to the opening's normal: the shortest
  // opening, then the deepest dip.
  std::uint32_t best = 0;
  double best_opening = 1e30, best_dip = 0;
  for (const auto& dir : kHalfNeighbourhood26) {
    int first[2] = {0, 0};  // per side: distance of the first host voxel
    double wall[2] = {0, 0};
    bool ok = true;
    for (int side = 0; side < 2 && ok; ++side) {
      const int s = side ? -1 : 1;
      int run_host = 0;
      for (int t = 1; t <= reach && run_host < o.wall_depth_vox; ++t) {
        const index_t q[3] = {p[0] + s * t * dir[0], p[1] + s * t * dir[1], p[2] + s * t * dir[2]};
        if (q[0] < 0 || q[1] < 0 || q[2] < 0 || q[0] >= d.x || q[1] >= d.y || q[2] >= d.z) {
          ok = false;
          break;
        }
        const bool is_host = host[labels(q[0], q[1], q[2])] && grey(q[0], q[1], q[2]) >= wall_above;
        if (!first[side] && !is_host) {
          if (t >= o.max_opening_vox) ok = false;
          continue;
        }
        if (!is_host) {
          ok = false;
          break;
        }
        if (!first[side]) first[side] = t;
        else wall[side] += grey(q[0], q[1], q[2]);  // past the wall's face, off the opening's blur
        ++run_host;
      }
      ok = ok && run_host == o.wall_depth_vox;
      if (ok) wall[side] /= std::max(1, o.wall_depth_vox - 1);
    }
    if (!ok || first[0] + first[1] - 1 > o.max_opening_vox) continue;
    const double dip = std::min(wall[0], wall[1]) - g;
    if (dip < margin) continue;
    const std::uint32_t a = particles(p[0] + first[0] * dir[0], p[1] + first[0] * dir[1], p[2] + first[0] * dir[2]);
    const std::uint32_t b = particles(p[0] - first[1] * dir[0], p[1] - first[1] * dir[1], p[2] - first[1] * dir[2]);
    if (!a || a != b) continue;
    const double opening =
        (first[0] + first[1] - 1) * std::sqrt(double(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]));
    if (opening < best_opening - 1e-9 || (opening < best_opening + 1e-9 && dip > best_dip))
      best = a, best_opening = opening, best_dip = dip;
  }
  return best;
}

double plane_offset(const PrincipalAxes& pa, const Vec3& p_um) {
  return (p_um[0] - pa.centroid_um[0]) * pa.axis[2][0] + (p_um[1] - pa.centroid_um[1]) * pa.axis[2][1] +
         (p_um[2] - pa.centroid_um[2]) * pa.axis[2][2];
}

double plane_offset(const PrincipalAxes& pa, index_t i, const Dims& d, const Vec3& h) {
  return plane_offset(pa, {static_cast<double>(i % d.x) * h[0], static_cast<double>((i / d.x) % d.y) * h[1],
                           static_cast<double>(i / (d.x * d.y)) * h[2]});
}

// Of the local principal planes (candidates within 4 voxels) at every (n/64)-th candidate, the one
// that holds most candidates within tol. A particle's candidates can hold a facet beside films and
// noise holes; their principal plane then runs between them, where a local plane at a facet voxel
// lies on the facet.
PrincipalAxes best_supported_plane(const std::vector<index_t>& v, const Dims& d, const Vec3& h, double tol) {
  const double reach = 4 * std::max({h[0], h[1], h[2]});
  auto centre = [&](index_t i) {
    return Vec3{static_cast<double>(i % d.x) * h[0], static_cast<double>((i / d.x) % d.y) * h[1],
                static_cast<double>(i / (d.x * d.y)) * h[2]};
  };
  PrincipalAxes best = principal_axes(v, d, h);
  std::size_t best_count = 0;
  for (index_t i : v) best_count += std::abs(plane_offset(best, i, d, h)) <= tol;
  const std::size_t stride = std::max<std::size_t>(1, v.size() / 64);
  for (std::size_t s = 0; s < v.size(); s += stride) {
    const Vec3 c = centre(v[s]);
    std::vector<index_t> local;
    for (index_t j : v) {
      const Vec3 q = centre(j);
      if (std::abs(q[0] - c[0]) <= reach && std::abs(q[1] - c[1]) <= reach && std::abs(q[2] - c[2]) <= reach)
        local.push_back(j);
    }
    if (local.size() < 8) continue;
    const PrincipalAxes pa = principal_axes(local, d, h);
    std::size_t count = 0;
    for (index_t j : v) count += std::abs(plane_offset(pa, j, d, h)) <= tol;
    if (count > best_count) best_count = count, best = pa;
  }
  return best;
}

// The candidates within tol of a plane started at `pa`, refitted twice to them (pa left at the last
// fit); v sorted, and so is the result.
std::vector<index_t> candidates_on_plane(const std::vector<index_t>& v, PrincipalAxes& pa, const Dims& d, const Vec3& h,
                                         double tol) {
  std::vector<index_t> on = v;
  for (int refit = 0; refit < 2; ++refit) {
    std::vector<index_t> next;
    for (index_t i : v)
      if (std::abs(plane_offset(pa, i, d, h)) <= tol) next.push_back(i);
    if (next.size() < 12) break;  // too few to fit a plane: judged on the last fit
    on = std::move(next);
    pa = principal_axes(on, d, h);
  }
  return on;
}

// Per particle of the closed host: its centroid (µm) and inscribed radius (its deepest voxel).
struct ParticleCore {
  Vec3 centroid_um{0, 0, 0};
  double radius_um = 0;
};

std::vector<ParticleCore> particle_cores(const Volume<std::uint32_t>& particles, const Volume<float>& depth,
                                         std::uint32_t count) {
  const Dims d = particles.dims();
  const Vec3 h = particles.spacing_um;
  std::vector<ParticleCore> out(count + 1);
  std::vector<double> n(count + 1, 0);
  for (index_t i = 0; i < particles.size(); ++i) {
    const std::uint32_t p = particles[i];
    if (!p || p > count) continue;
    out[p].centroid_um[0] += static_cast<double>(i % d.x) * h[0];
    out[p].centroid_um[1] += static_cast<double>((i / d.x) % d.y) * h[1];
    out[p].centroid_um[2] += static_cast<double>(i / (d.x * d.y)) * h[2];
    out[p].radius_um = std::max<double>(out[p].radius_um, depth[i]);
    ++n[p];
  }
  for (std::uint32_t p = 1; p <= count; ++p)
    for (int a = 0; a < 3 && n[p] > 0; ++a) out[p].centroid_um[a] /= n[p];
  return out;
}

}  // namespace

Facets detect_facets(const Volume<std::uint8_t>& labels, const Volume<float>& grey, const std::array<bool, 256>& host,
                     double host_level, double darker_level, const FacetOptions& o,
                     const Volume<std::uint32_t>& taken) {
  const Dims d = labels.dims();
  const Vec3 h = labels.spacing_um;
  const double h_max = std::max({h[0], h[1], h[2]});
  Facets out;
  out.noise_sigma = host_noise_sigma(labels, grey, host);
  const double contrast = host_level - darker_level;
  Volume<float> smoothed;
  const Volume<float>* g = &grey;
  double min_depth_vox = o.min_depth_vox;
  // Too noisy for single voxels (noise holes walled by one particle outnumber facets): look on the
  // smoothed grey, where a 1.2-voxel opening still dips ≈ 0.5 × contrast and the noise is a fifth.
  if (!(out.noise_sigma <= o.max_noise * contrast)) {
    if (!(o.smooth_sigma_vox > 0)) return out;
    smoothed = gaussian_smooth(grey, o.smooth_sigma_vox * std::min({h[0], h[1], h[2]}));
    g = &smoothed;
    out.noise_sigma = host_noise_sigma(labels, smoothed, host);
    if (!(out.noise_sigma <= o.max_noise * contrast)) return out;
    min_depth_vox = std::max(min_depth_vox, o.smoothed_min_depth_vox);
  }
  // 1. Particles of the closed host.
  Volume<std::uint8_t> host_mask = labels.like<std::uint8_t>(d);
  for (index_t i = 0; i < labels.size(); ++i) host_mask[i] = host[labels[i]];
  const double r = o.closing_vox * h_max;
  const Volume<float> depth = distance_transform(erode(dilate(host_mask, r), r));
  std::uint32_t markers_count = 0;
  const Volume<std::uint32_t> particles =
      watershed_from_markers(depth, h_maxima_markers(depth, o.marker_h_vox * h_max, 26, &markers_count), 26);
  // 2. Candidates, each with its particle.
  const double margin = std::max(o.min_dip * (host_level - darker_level), o.min_dip_noise * out.noise_sigma);
  // In clean images the labels hold two voxels of a 1.2-voxel opening (the PSF lifts its rim above
  // the threshold), where noise widens them to three: count dark host voxels as opening there, so
  // that the clean labels give a facet as many candidates as the noisier ones (not on the smoothed grey).
  const bool widen = o.open_dip > 0 && g == &grey && out.noise_sigma <= o.open_max_noise * contrast;
  const double wall_above = widen ? host_level - std::max(o.open_dip * contrast, o.open_dip_noise * out.noise_sigma)
                                  : -std::numeric_limits<double>::infinity();
  Volume<std::uint32_t> walled = labels.like<std::uint32_t>(d);
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& zs) {
    for (index_t z = zs.begin(); z != zs.end(); ++z)
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          const index_t i = labels.index(x, y, z);
          if ((host[labels[i]] && (*g)[i] >= wall_above) || !(depth[i] > 0) || taken[i]) continue;
          const index_t p[3] = {x, y, z};
          walled[i] = walling_particle(labels, *g, host, particles, p, margin, wall_above, o);
        }
  });
  std::vector<std::vector<index_t>> of_particle(markers_count + 1);
  for (index_t i = 0; i < labels.size(); ++i)
    if (walled[i] && walled[i] <= markers_count) of_particle[walled[i]].push_back(i), ++out.candidates;
  // 3. Per particle, the plane of its candidates.
  const double tol = 1.5 * h_max;
  // The particles' centres and radii matter only to the centre rule, to the coplanar rule's reach
  // and, where a deeper mean is asked (smoothed grey), to core_reach: skip the pass over the
  // particles otherwise.
  const bool core_rules = o.max_centre_offset > 0 || (o.core_reach > 0 && min_depth_vox > o.min_depth_vox) ||
                          (o.coplanar_min_voxels > 0 && o.coplanar_min_reach > 0);
  const std::vector<ParticleCore> cores =
      core_rules ? particle_cores(particles, depth, markers_count) : std::vector<ParticleCore>();
  for (std::uint32_t p = 1; p <= markers_count; ++p) {
    std::vector<index_t> v = of_particle[p];
    // The first plane is the principal plane of all candidates; each further one, among those left
    // off the planes before, the local plane that holds most of them.
    const index_t all = static_cast<index_t>(v.size());
    const index_t fewest = o.coplanar_min_voxels > 0 ? std::min(o.min_voxels, o.coplanar_min_voxels) : o.min_voxels;
    for (int plane = 0; plane < o.max_planes && static_cast<index_t>(v.size()) >= (plane ? o.min_voxels : fewest);
         ++plane) {
      PrincipalAxes pa = plane == 0 ? principal_axes(v, d, h) : best_supported_plane(v, d, h, tol);
      std::vector<index_t> on = candidates_on_plane(v, pa, d, h, tol);
      const index_t n_on = static_cast<index_t>(on.size());
      if (n_on < o.min_voxels && !(plane == 0 && n_on >= fewest && n_on >= o.coplanar_share * all)) break;
      std::vector<index_t> rest;
      std::set_difference(v.begin(), v.end(), on.begin(), on.end(), std::back_inserter(rest));
      v = std::move(rest);
      // Facets run through their particle; films that the closing fused into one "particle" lie off
      // its centre (opt-in, facets.h).
      if (o.max_centre_offset > 0 &&
          std::abs(plane_offset(pa, cores[p].centroid_um)) > o.max_centre_offset * cores[p].radius_um)
        continue;
      double mean_depth = 0, deepest = 0;
      for (index_t i : on) mean_depth += depth[i], deepest = std::max<double>(deepest, depth[i]);
      mean_depth /= static_cast<double>(on.size()) * h_max;
      const bool reaches_core = core_rules && o.core_reach > 0 && deepest >= o.core_reach * cores[p].radius_um;
      if (mean_depth < (reaches_core ? o.min_depth_vox : min_depth_vox)) continue;
      if (plane > 0 && mean_depth < o.further_min_depth_vox) continue;
      // A plane admitted by the coplanar rule only must reach into its particle (facets.h).
      if (n_on < o.min_voxels && o.coplanar_min_reach > 0 && deepest < o.coplanar_min_reach * cores[p].radius_um)
        continue;
      out.voxels.push_back(std::move(on));
    }
  }
  return out;
}

}  // namespace vp
