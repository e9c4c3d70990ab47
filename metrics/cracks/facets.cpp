#include "metrics/cracks/facets.h"

#include <algorithm>
#include <cmath>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

namespace vp {

namespace {

// The 13 grid directions of a 26-neighbourhood, one of each ± pair.
constexpr std::array<std::array<int, 3>, 13> kDirections{{{1, 0, 0},
                                                          {0, 1, 0},
                                                          {0, 0, 1},
                                                          {1, 1, 0},
                                                          {1, -1, 0},
                                                          {1, 0, 1},
                                                          {1, 0, -1},
                                                          {0, 1, 1},
                                                          {0, 1, -1},
                                                          {1, 1, 1},
                                                          {1, 1, -1},
                                                          {1, -1, 1},
                                                          {1, -1, -1}}};

}  // namespace

const std::array<std::array<int, 3>, 13>& facet_directions() { return kDirections; }

namespace {

// Grey noise σ of the host: 1.4826 × the median absolute deviation of host voxels whose six
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
          deep = host[labels[i + k]] && host[labels[i - k]] && host[labels[i + k * d.x]] &&
                 host[labels[i - k * d.x]] && host[labels[i + k * d.x * d.y]] && host[labels[i - k * d.x * d.y]];
        if (deep) g.push_back(grey[i]);
      }
  if (g.size() < 2) return 0;
  auto mid = g.begin() + static_cast<std::ptrdiff_t>(g.size() / 2);
  std::nth_element(g.begin(), mid, g.end());
  const float median = *mid;
  for (float& v : g) v = std::abs(v - median);
  std::nth_element(g.begin(), mid, g.end());
  return 1.4826 * *mid;
}

// Keeps the candidates that end in the open, not in a wedge. A film of the darker solid between
// two particles thickens away from their contact: walking along the film from one of its voxels
// (a ray across the sandwich direction d), the first voxel past the thin part is walled along d
// on both sides within wedge_reach_vox (a wedge). A facet ends at its particle's surface, and
// outside a convex particle a line along d meets it on one side at most.
}  // namespace

Volume<std::uint8_t> facet_wedge_rays(const Volume<std::uint8_t>& mask, const Volume<std::uint8_t>& labels,
                                      const std::array<bool, 256>& host, const FacetOptions& o) {
  const Dims d = labels.dims();
  Volume<std::uint8_t> kept = labels.like<std::uint8_t>(d);
  auto inside = [&](index_t x, index_t y, index_t z) { return x >= 0 && y >= 0 && z >= 0 && x < d.x && y < d.y && z < d.z; };
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& zs) {
    for (index_t z = zs.begin(); z != zs.end(); ++z)
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          const index_t i = labels.index(x, y, z);
          if (!mask[i]) {
            kept[i] = 255;
            continue;
          }
          const auto& n = kDirections[mask[i] - 1u];
          int wedges = 0;
          for (int ez = -1; ez <= 1; ++ez)
            for (int ey = -1; ey <= 1; ++ey)
              for (int ex = -1; ex <= 1; ++ex) {
                if ((!ex && !ey && !ez) || ex * n[0] + ey * n[1] + ez * n[2] != 0) continue;
                for (int s = 1; s <= o.ray_vox; ++s) {
                  const index_t u = x + s * ex, v = y + s * ey, w = z + s * ez;
                  if (!inside(u, v, w)) break;
                  const index_t j = labels.index(u, v, w);
                  if (host[labels[j]]) break;  // the film or facet ends in the host
                  if (mask[j]) continue;       // still thin
                  int sides = 0;
                  for (int side = -1; side <= 1; side += 2)
                    for (int t = 1; t <= o.wedge_reach_vox; ++t) {
                      const index_t a = u + side * t * n[0], b = v + side * t * n[1], c = w + side * t * n[2];
                      if (!inside(a, b, c)) break;
                      if (host[labels[labels.index(a, b, c)]]) {
                        ++sides;
                        break;
                      }
                    }
                  wedges += sides == 2;
                  break;
                }
              }
          kept[i] = static_cast<std::uint8_t>(wedges);
        }
  });
  return kept;
}

namespace {

Volume<std::uint8_t> without_wedges(const Volume<std::uint8_t>& mask, const Volume<std::uint8_t>& labels,
                                    const std::array<bool, 256>& host, const FacetOptions& o) {
  const Volume<std::uint8_t> wedges = facet_wedge_rays(mask, labels, host, o);
  Volume<std::uint8_t> kept = mask;
  for (index_t i = 0; i < kept.size(); ++i)
    if (kept[i] && wedges[i] > o.max_wedge_rays) kept[i] = 0;
  return kept;
}

}  // namespace

FacetCandidates facet_candidates(const Volume<std::uint8_t>& labels, const Volume<float>& grey,
                                 const std::array<bool, 256>& host, double host_level, double darker_level,
                                 const FacetOptions& o, const Volume<std::uint32_t>* particles) {
  const Dims d = labels.dims();
  FacetCandidates out;
  out.mask = labels.like<std::uint8_t>(d);
  if (particles) out.particle = labels.like<std::uint32_t>(d);
  out.noise_sigma = host_noise_sigma(labels, grey, host);
  out.margin = std::max(o.min_dip * (host_level - darker_level), o.min_dip_noise * out.noise_sigma);
  const int reach = o.max_opening_vox + o.wall_depth_vox;
  tbb::parallel_for(tbb::blocked_range<index_t>(0, d.z), [&](const tbb::blocked_range<index_t>& zs) {
    for (index_t z = zs.begin(); z != zs.end(); ++z)
      for (index_t y = 0; y < d.y; ++y)
        for (index_t x = 0; x < d.x; ++x) {
          const index_t i = labels.index(x, y, z);
          if (host[labels[i]]) continue;
          const index_t p[3] = {x, y, z};
          double best_opening = 1e30, best_dip = 0;
          for (std::size_t k = 0; k < kDirections.size(); ++k) {
            const auto& dir = kDirections[k];
            // Per side: the distance of the first host voxel (0: none within the opening), and
            // the mean grey of the wall beyond it.
            int first[2] = {0, 0};
            double wall[2] = {0, 0};
            bool ok = true;
            for (int side = 0; side < 2 && ok; ++side) {
              const int s = side ? -1 : 1;
              int run_host = 0;
              for (int t = 1; t <= reach; ++t) {
                const index_t q[3] = {p[0] + s * t * dir[0], p[1] + s * t * dir[1], p[2] + s * t * dir[2]};
                if (q[0] < 0 || q[1] < 0 || q[2] < 0 || q[0] >= d.x || q[1] >= d.y || q[2] >= d.z) {
                  ok = false;
                  break;
                }
                const index_t j = labels.index(q[0], q[1], q[2]);
                if (!first[side]) {
                  if (host[labels[j]]) first[side] = t;
                  else if (t >= o.max_opening_vox) {
                    ok = false;
                    break;
                  }
                }
                if (first[side]) {
                  if (!host[labels[j]]) {
                    ok = false;
                    break;
                  }
                  // The wall's grey one voxel past its face (off the opening's blur).
                  if (t > first[side]) wall[side] += grey[j];
                  if (++run_host == o.wall_depth_vox) break;
                }
              }
              if (ok && run_host < o.wall_depth_vox) ok = false;
              if (ok) wall[side] /= o.wall_depth_vox - 1;
            }
            if (!ok || first[0] + first[1] - 1 > o.max_opening_vox) continue;
            if (particles) {  // both walls in one particle: a facet, not a film between two
              const std::uint32_t a = (*particles)(p[0] + first[0] * dir[0], p[1] + first[0] * dir[1], p[2] + first[0] * dir[2]);
              const std::uint32_t b = (*particles)(p[0] - first[1] * dir[0], p[1] - first[1] * dir[1], p[2] - first[1] * dir[2]);
              if (!a || a != b) continue;
              out.particle[i] = a;
            }
            const double dip = std::min(wall[0], wall[1]) - grey[i];
            if (dip < out.margin) continue;
            // The direction closest to the opening's normal: the shortest opening, then the deepest dip.
            const double opening =
                (first[0] + first[1] - 1) * std::sqrt(double(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]));
            if (opening < best_opening - 1e-9 || (opening < best_opening + 1e-9 && dip > best_dip)) {
              best_opening = opening, best_dip = dip;
              out.mask[i] = static_cast<std::uint8_t>(k + 1);
            }
          }
        }
  });
  if (o.max_wedge_rays >= 0) out.mask = without_wedges(out.mask, labels, host, o);
  return out;
}

}  // namespace vp
