#include "metrics/cracks/detection.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <sstream>

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

#include "core/error.h"
#include "filters/segment/cleanup.h"
#include "filters/segment/features.h"
#include "metrics/connectivity.h"
#include "metrics/cracks/shape.h"
#include "metrics/local_thickness.h"

namespace vp {

namespace {

// Union-find over parent (parent[i] == i at a root), with path halving.
template <class Index>
Index root_of(std::vector<Index>& parent, Index i) {
  while (parent[i] != i) i = parent[i] = parent[parent[i]];
  return i;
}

// Joins the pairs whose flag is set, in pair order; the smaller root becomes the parent, so the
// sets' roots do not depend on how the flags were computed.
template <class Index, class Pair>
void join_accepted_pairs(std::vector<Index>& parent, const std::vector<Pair>& pairs,
                         const std::vector<std::uint8_t>& accepted) {
  for (std::size_t k = 0; k < pairs.size(); ++k) {
    if (!accepted[k]) continue;
    const Index ra = root_of(parent, static_cast<Index>(pairs[k].first));
    const Index rb = root_of(parent, static_cast<Index>(pairs[k].second));
    if (ra != rb) parent[std::max(ra, rb)] = std::min(ra, rb);
  }
}

// The voxel-wise passes run in parallel over blocks of voxels; what they count is a sum of
// integers, the same at any thread count.
template <class F>
void for_each_voxel(index_t n, F f) {
  tbb::parallel_for(tbb::blocked_range<index_t>(0, n, 1 << 16), [&](const tbb::blocked_range<index_t>& r) {
    for (index_t i = r.begin(); i != r.end(); ++i) f(i);
  });
}
template <class F>
index_t count_voxels(index_t n, F f) {
  return tbb::parallel_reduce(
      tbb::blocked_range<index_t>(0, n, 1 << 16), index_t{0},
      [&](const tbb::blocked_range<index_t>& r, index_t c) {
        for (index_t i = r.begin(); i != r.end(); ++i) c += f(i) ? 1 : 0;
        return c;
      },
      std::plus<>());
}

// Calls add(id, i) for every voxel i with a nonzero id, in raster order: the volume is scanned in
// parallel in blocks, each listing its labelled voxels (sparse), and the lists are walked in order.
template <class Add>
void for_each_labelled_voxel(const Volume<std::uint32_t>& ids, Add add) {
  const index_t n = ids.size(), block = index_t{1} << 18;
  std::vector<std::vector<index_t>> found(static_cast<std::size_t>((n + block - 1) / block));
  tbb::parallel_for(std::size_t{0}, found.size(), [&](std::size_t b) {
    const index_t end = std::min(n, static_cast<index_t>(b + 1) * block);
    for (index_t i = static_cast<index_t>(b) * block; i < end; ++i)
      if (ids[i]) found[b].push_back(i);
  });
  for (auto& f : found) {
    for (index_t i : f) add(ids[i], i);
    f = {};
  }
}

// Renumbers the ids 1..count in raster order of each id's first voxel: the first voxels found per
// block in parallel, numbered in block order, then every voxel relabelled in parallel. Ids that hold
// no voxel (a crack merged into another) are dropped; returns how many ids remain.
std::uint32_t number_in_raster_order(Volume<std::uint32_t>& ids, std::uint32_t count) {
  const index_t n = ids.size(), block = index_t{1} << 18;
  std::vector<std::vector<std::uint32_t>> first_seen(static_cast<std::size_t>((n + block - 1) / block));
  tbb::parallel_for(std::size_t{0}, first_seen.size(), [&](std::size_t b) {
    std::vector<std::uint8_t> seen(count + 1, 0);
    const index_t end = std::min(n, static_cast<index_t>(b + 1) * block);
    for (index_t i = static_cast<index_t>(b) * block; i < end; ++i)
      if (ids[i] && !seen[ids[i]]) seen[ids[i]] = 1, first_seen[b].push_back(ids[i]);
  });
  std::vector<std::uint32_t> order(count + 1, 0);
  std::uint32_t next = 0;
  for (const auto& f : first_seen)
    for (std::uint32_t id : f)
      if (!order[id]) order[id] = ++next;
  for_each_voxel(n, [&](index_t i) { ids[i] = order[ids[i]]; });
  return next;
}

std::array<bool, 256> label_set(const std::vector<int>& labels) {
  std::array<bool, 256> in{};
  for (int l : labels)
    if (l >= 0 && l < 256) in[static_cast<std::size_t>(l)] = true;
  return in;
}

// A float's bits as an unsigned key in the floats' order (the sign bit flipped, negatives inverted).
std::uint32_t order_key(float f) {
  const auto u = std::bit_cast<std::uint32_t>(f);
  return u & 0x80000000u ? ~u : u | 0x80000000u;
}
float from_order_key(std::uint32_t k) { return std::bit_cast<float>(k & 0x80000000u ? k & 0x7fffffffu : ~k); }

// Counts of two sets' voxels in 2¹⁶ buckets: `add(i, counts)` counts voxel i. In parallel, one
// table per thread, summed: integer counts, the same at any thread count.
template <class Add>
std::vector<std::array<index_t, 2>> count_buckets(index_t n, Add add) {
  using Table = std::vector<std::array<index_t, 2>>;
  tbb::enumerable_thread_specific<Table> tables([] { return Table(std::size_t{1} << 16, {0, 0}); });
  tbb::parallel_for(tbb::blocked_range<index_t>(0, n, 1 << 16), [&](const tbb::blocked_range<index_t>& r) {
    Table& t = tables.local();
    for (index_t i = r.begin(); i != r.end(); ++i) add(i, t);
  });
  Table count(std::size_t{1} << 16, {0, 0});
  for (const Table& t : tables)
    for (std::size_t b = 0; b < count.size(); ++b) count[b][0] += t[b][0], count[b][1] += t[b][1];
  return count;
}

// Median grey levels of two label sets (the element of rank n/2 in order, NaN for an empty set),
// found without copying the voxels' grey (up to 4 B/voxel): one counting pass over the high 16 bits
// of the order keys, one over the low 16 bits inside each median's bucket.
std::array<double, 2> grey_medians(const Volume<std::uint8_t>& labels, const Volume<float>& grey,
                                   const std::array<bool, 256>& first, const std::array<bool, 256>& second) {
  std::array<std::uint8_t, 256> set_of{};  // 1: first, 2: second, 0: neither
  for (std::size_t l = 0; l < 256; ++l) set_of[l] = first[l] ? 1 : second[l] ? 2 : 0;
  std::vector<std::array<index_t, 2>> count = count_buckets(labels.size(), [&](index_t i, auto& c) {
    if (const int s = set_of[labels[i]]) ++c[order_key(grey[i]) >> 16][s - 1];
  });
  std::array<index_t, 2> rank{}, total{};
  std::array<std::uint32_t, 2> bucket{};
  for (int s = 0; s < 2; ++s) {
    for (const auto& c : count) total[s] += c[s];
    rank[s] = total[s] / 2;
    if (total[s])
      for (; rank[s] >= count[bucket[s]][s]; ++bucket[s]) rank[s] -= count[bucket[s]][s];
  }
  count = count_buckets(labels.size(), [&](index_t i, auto& c) {
    if (const int s = set_of[labels[i]]) {
      const std::uint32_t k = order_key(grey[i]);
      if (k >> 16 == bucket[s - 1]) ++c[k & 0xffffu][s - 1];
    }
  });
  std::array<double, 2> median{};
  for (int s = 0; s < 2; ++s) {
    median[s] = std::numeric_limits<double>::quiet_NaN();
    if (!total[s]) continue;
    std::uint32_t low = 0;
    for (; rank[s] >= count[low][s]; ++low) rank[s] -= count[low][s];
    median[s] = from_order_key(bucket[s] << 16 | low);
  }
  return median;
}

// Median grey levels of the host and of the void, from the labels (NaN when absent).
struct GreyLevels {
  double host = 0, void_ = 0;
};
GreyLevels grey_levels(const Volume<std::uint8_t>& labels, const Volume<float>& grey, const std::array<bool, 256>& host,
                       const std::array<bool, 256>& pore) {
  const std::array<double, 2> m = grey_medians(labels, grey, host, pore);
  return {m[0], m[1]};
}

// The components with an id above c that come within r voxels (Chebyshev) of c's voxels, in
// increasing order. Either each voxel's (2r+1)³ neighbourhood is scanned, or — for components
// large against their bounding box — the box is dilated by r (separable) and scanned once:
// the same set, whichever costs less.
std::vector<std::uint32_t> components_within_reach(const Volume<std::uint32_t>& ids, const std::vector<index_t>& voxels,
                                                   std::uint32_t c, int r) {
  const Dims d = ids.dims();
  std::vector<std::uint32_t> found;
  index_t lo[3] = {d.x, d.y, d.z}, hi[3] = {-1, -1, -1};
  for (index_t i : voxels) {
    const index_t p[3] = {i % d.x, (i / d.x) % d.y, i / (d.x * d.y)};
    for (int a = 0; a < 3; ++a)
      lo[a] = std::min(lo[a], std::max<index_t>(0, p[a] - r)),
      hi[a] = std::max(hi[a], std::min<index_t>(d[a] - 1, p[a] + r));
  }
  const index_t n[3] = {hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1};
  const double box = static_cast<double>(n[0]) * static_cast<double>(n[1]) * static_cast<double>(n[2]);
  const double per_voxel = std::pow(2.0 * r + 1, 3);
  if (static_cast<double>(voxels.size()) * per_voxel <= 8 * box) {
    for (index_t i : voxels) {
      const index_t x = i % d.x, y = (i / d.x) % d.y, z = i / (d.x * d.y);
      for (index_t w = std::max<index_t>(0, z - r); w <= std::min<index_t>(d.z - 1, z + r); ++w)
        for (index_t v = std::max<index_t>(0, y - r); v <= std::min<index_t>(d.y - 1, y + r); ++v) {
          const std::uint32_t* row = &ids(0, v, w);
          for (index_t u = std::max<index_t>(0, x - r); u <= std::min<index_t>(d.x - 1, x + r); ++u)
            if (row[u] > c && (found.empty() || found.back() != row[u])) found.push_back(row[u]);
        }
    }
  } else {
    std::vector<std::uint8_t> mask(static_cast<std::size_t>(n[0] * n[1] * n[2]), 0), line;
    auto at = [&](index_t x, index_t y, index_t z) { return static_cast<std::size_t>(x + n[0] * (y + n[1] * z)); };
    for (index_t i : voxels) mask[at(i % d.x - lo[0], (i / d.x) % d.y - lo[1], i / (d.x * d.y) - lo[2])] = 1;
    const index_t step[3] = {1, n[0], n[0] * n[1]};
    for (int a = 0; a < 3; ++a) {  // box dilation by r along each axis in turn, line by line in place
      const int b = (a + 1) % 3, c = (a + 2) % 3;
      line.resize(static_cast<std::size_t>(n[a]));
      for (index_t v = 0; v < n[c]; ++v)
        for (index_t u = 0; u < n[b]; ++u) {
          index_t p[3];
          p[a] = 0, p[b] = u, p[c] = v;
          std::uint8_t* first = &mask[at(p[0], p[1], p[2])];
          for (index_t t = 0; t < n[a]; ++t) line[static_cast<std::size_t>(t)] = first[t * step[a]];
          index_t set = 0;  // set voxels of the line within [t − r, t + r]
          for (index_t t = 0; t < std::min<index_t>(n[a], r); ++t) set += line[static_cast<std::size_t>(t)];
          for (index_t t = 0; t < n[a]; ++t) {
            if (t + r < n[a]) set += line[static_cast<std::size_t>(t + r)];
            if (t - r - 1 >= 0) set -= line[static_cast<std::size_t>(t - r - 1)];
            first[t * step[a]] = set > 0;
          }
        }
    }
    for (index_t z = 0; z < n[2]; ++z)
      for (index_t y = 0; y < n[1]; ++y) {
        const std::uint32_t* row = &ids(lo[0], lo[1] + y, lo[2] + z);
        const std::uint8_t* m = &mask[at(0, y, z)];
        for (index_t x = 0; x < n[0]; ++x)
          if (m[x] && row[x] > c && (found.empty() || found.back() != row[x])) found.push_back(row[x]);
      }
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return found;
}

// The width of the slab of uniform density with the voxels' variance along their normal: k whole
// voxel layers read k voxels (principal_axes counts each voxel's own extent).
double slab_thickness_um(const PrincipalAxes& p) { return std::sqrt(12 * p.variance[2]); }

// Centre of voxel i in µm, as principal_axes places it (index × spacing).
Vec3 voxel_centre_um(index_t i, const Dims& d, const Vec3& h) {
  return Vec3{static_cast<double>(i % d.x) * h[0], static_cast<double>((i / d.x) % d.y) * h[1],
              static_cast<double>(i / (d.x * d.y)) * h[2]};
}

// The voxels' bounding box [lo, hi] (voxel coordinates), by a parallel min / max.
struct VoxelBox {
  index_t lo[3], hi[3];
};
VoxelBox voxel_box(const std::vector<index_t>& voxels, const Dims& d) {
  const VoxelBox none{{d.x, d.y, d.z}, {0, 0, 0}};
  return tbb::parallel_reduce(
      tbb::blocked_range<std::size_t>(0, voxels.size(), 1 << 14), none,
      [&](const tbb::blocked_range<std::size_t>& r, VoxelBox b) {
        for (std::size_t q = r.begin(); q != r.end(); ++q) {
          const index_t i = voxels[q];
          const index_t c[3] = {i % d.x, (i / d.x) % d.y, i / (d.x * d.y)};
          for (int a = 0; a < 3; ++a) b.lo[a] = std::min(b.lo[a], c[a]), b.hi[a] = std::max(b.hi[a], c[a]);
        }
        return b;
      },
      [](VoxelBox a, const VoxelBox& b) {
        for (int k = 0; k < 3; ++k) a.lo[k] = std::min(a.lo[k], b.lo[k]), a.hi[k] = std::max(a.hi[k], b.hi[k]);
        return a;
      });
}

// The closest voxel pair (squared distance in µm², outer voxel, inner voxel) of two sets, the
// first strictly closest in (outer, inner) order. Inner voxels farther than reach_um from the outer
// set's box [lo, hi] are skipped: they cannot be the answer when it lies within reach.
struct VoxelPair {
  double squared_um2 = std::numeric_limits<double>::infinity();
  index_t outer = 0, inner = 0;
};
VoxelPair closest_voxel_pair(const std::vector<index_t>& outer, const index_t (&lo)[3], const index_t (&hi)[3],
                             const std::vector<index_t>& inner, double reach_um, const Dims& d, const Vec3& h) {
  std::vector<index_t> near;
  for (index_t j : inner) {
    const index_t q[3] = {j % d.x, (j / d.x) % d.y, j / (d.x * d.y)};
    bool inside = true;
    for (int ax = 0; ax < 3 && inside; ++ax)
      inside = static_cast<double>(std::max(lo[ax] - q[ax], q[ax] - hi[ax])) * h[ax] <= reach_um;
    if (inside) near.push_back(j);
  }
  VoxelPair best;
  for (index_t i : outer) {
    const Vec3 ci = voxel_centre_um(i, d, h);
    for (index_t j : near) {
      const Vec3 cj = voxel_centre_um(j, d, h);
      const double dd =
          (ci[0] - cj[0]) * (ci[0] - cj[0]) + (ci[1] - cj[1]) * (ci[1] - cj[1]) + (ci[2] - cj[2]) * (ci[2] - cj[2]);
      if (dd < best.squared_um2) best = {dd, i, j};
    }
  }
  return best;
}

// Distance (µm) of point c from the plane through p's centroid normal to its smallest axis.
double plane_offset(const PrincipalAxes& p, const Vec3& c) {
  const Vec3& n = p.axis[2];
  return std::abs((c[0] - p.centroid_um[0]) * n[0] + (c[1] - p.centroid_um[1]) * n[1] +
                  (c[2] - p.centroid_um[2]) * n[2]);
}

// Every voxel within 1.5 voxels of p's plane (principal_axes places voxel centres at index × spacing).
bool lies_on_plane(const PrincipalAxes& p, const std::vector<index_t>& voxels, const Dims& d, const Vec3& h) {
  const double h_max = std::max({h[0], h[1], h[2]});
  return std::all_of(voxels.begin(), voxels.end(),
                     [&](index_t i) { return plane_offset(p, voxel_centre_um(i, d, h)) <= 1.5 * h_max; });
}

// Joins pieces of one sheet: a crack only partly labelled as void (the PSF lifts much of a
// two-voxel opening above the threshold) falls apart into pieces with host gaps between them,
// each too small or too short to pass the sheet test alone. Two components closer than
// gap_vox + 1 voxels are joined when the smaller lies on the larger one's plane (every voxel
// centre within 1.5 voxels of it) and the larger is sheet-like (aspect ≥ 2, so that its normal
// means something); when the smaller has ≥ 20 voxels and is sheet-like too, their normals must
// also agree within 20°. Crossing or stacked cracks are not coplanar, so they stay apart.
// Returns each component's group: the smallest component id in it (its first in raster order).
std::vector<std::uint32_t> coplanar_groups(const Clusters& comps, const std::vector<std::vector<index_t>>& members,
                                           const Vec3& h, int gap_vox) {
  std::vector<std::uint32_t> parent(comps.count + 1);
  for (std::uint32_t c = 0; c <= comps.count; ++c) parent[c] = c;
  if (gap_vox <= 0 || comps.count < 2) return parent;
  const Dims d = comps.ids.dims();
  // Candidate pairs: components within reach (r voxels, Chebyshev) of each other.
  const int r = gap_vox + 1;
  std::vector<std::vector<std::uint32_t>> reach(comps.count + 1);
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(1, comps.count + 1, 1),
                    [&](const tbb::blocked_range<std::uint32_t>& range) {
                      for (std::uint32_t c = range.begin(); c != range.end(); ++c)
                        reach[c] = components_within_reach(comps.ids, members[c], c, r);
                    });
  std::vector<std::pair<std::uint32_t, std::uint32_t>> pairs;
  for (std::uint32_t c = 1; c <= comps.count; ++c)
    for (std::uint32_t o : reach[c]) pairs.emplace_back(c, o);
  if (pairs.empty()) return parent;
  // Whether a pair is coplanar does not depend on the pairs joined before it: every pair is judged
  // in parallel (the axes of each component a judgement may read taken first, also in parallel),
  // then the coplanar pairs are joined in pair order.
  std::vector<std::uint8_t> needs_axes(comps.count + 1, 0);
  for (const auto& [a, b] : pairs) {
    const bool a_larger = members[a].size() >= members[b].size();
    const std::uint32_t big = a_larger ? a : b, small = a_larger ? b : a;
    needs_axes[big] = 1;
    if (members[small].size() >= 20) needs_axes[small] = 1;
  }
  std::vector<PrincipalAxes> axes(comps.count + 1);
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(1, comps.count + 1, 1),
                    [&](const tbb::blocked_range<std::uint32_t>& range) {
                      for (std::uint32_t c = range.begin(); c != range.end(); ++c)
                        if (needs_axes[c]) axes[c] = principal_axes(members[c], d, h);
                    });
  std::vector<std::uint8_t> coplanar(pairs.size(), 0);
  tbb::parallel_for(std::size_t{0}, pairs.size(), [&](std::size_t k) {
    const auto [a, b] = pairs[k];
    const bool a_larger = members[a].size() >= members[b].size();
    const std::uint32_t big = a_larger ? a : b, small = a_larger ? b : a;
    const PrincipalAxes& pb = axes[big];
    if (sheet_aspect(pb) < 2) return;
    const Vec3& n = pb.axis[2];
    if (!lies_on_plane(pb, members[small], d, h)) return;
    if (members[small].size() >= 20) {
      const PrincipalAxes& ps = axes[small];
      const Vec3& m = ps.axis[2];
      if (sheet_aspect(ps) >= 2 && std::abs(n[0] * m[0] + n[1] * m[1] + n[2] * m[2]) < std::cos(20 * M_PI / 180))
        return;
    }
    coplanar[k] = 1;
  });
  join_accepted_pairs(parent, pairs, coplanar);
  for (std::uint32_t c = 1; c <= comps.count; ++c) parent[c] = root_of(parent, c);
  return parent;
}

// Is host voxel j beside (26-neighbourhood) a voxel of another solid whose grey lies above
// `level`? Such a voxel is in the partial-volume rim of a solid brighter than the host: the PSF
// lifts a crack running along that solid's surface to the host's grey or above, so its grey says
// nothing about whether host there is intact.
bool beside_brighter_solid(index_t j, const Volume<std::uint8_t>& labels, const Volume<std::uint8_t>& void_mask,
                           const std::array<bool, 256>& host, const Volume<float>& grey, double level) {
  if (!std::isfinite(level)) return false;
  const Dims d = labels.dims();
  const index_t x = j % d.x, y = (j / d.x) % d.y, z = j / (d.x * d.y);
  for (index_t w = std::max<index_t>(0, z - 1); w <= std::min(d.z - 1, z + 1); ++w)
    for (index_t v = std::max<index_t>(0, y - 1); v <= std::min(d.y - 1, y + 1); ++v)
      for (index_t u = std::max<index_t>(0, x - 1); u <= std::min(d.x - 1, x + 1); ++u) {
        const index_t k = u + d.x * (v + d.y * w);
        if (!host[labels[k]] && !void_mask[k] && grey[k] > level) return true;
      }
  return false;
}

// Does the straight path between voxels a and b cross no intact host? Each run of host voxels
// along it is either short (≤ join_gap_vox: the partial-volume rim where a crack meets the particle
// that interrupts it, or a stretch of the crack the PSF lifted above the threshold, as
// coplanar_groups allows) or, with grey, dark on average (≤ dark_below: the crack half open).
// With grey and a finite rim_of_solid_above, host voxels beside another solid brighter than that
// (beside_brighter_solid) count as that solid: a crack along the surface of a brighter particle.
bool crosses_no_intact_host(index_t a, index_t b, const Volume<std::uint8_t>& labels,
                            const Volume<std::uint8_t>& void_mask, const std::array<bool, 256>& host,
                            const Volume<float>* grey, double dark_below, int join_gap_vox,
                            double rim_of_solid_above = std::numeric_limits<double>::infinity()) {
  const Dims d = labels.dims();
  const Vec3& h = labels.spacing_um;
  const Vec3 pa = voxel_centre_um(a, d, h), pb = voxel_centre_um(b, d, h);
  const double len = std::sqrt((pa[0] - pb[0]) * (pa[0] - pb[0]) + (pa[1] - pb[1]) * (pa[1] - pb[1]) +
                               (pa[2] - pb[2]) * (pa[2] - pb[2]));
  const int steps = std::max(1, static_cast<int>(std::ceil(2 * len / std::min({h[0], h[1], h[2]}))));
  index_t last = -1, run = 0;
  double run_grey = 0;
  auto run_ok = [&] { return run <= join_gap_vox || (grey && run_grey / static_cast<double>(run) <= dark_below); };
  for (int k = 1; k < steps; ++k) {
    const double f = static_cast<double>(k) / steps;
    index_t q[3];
    for (int ax = 0; ax < 3; ++ax) q[ax] = std::lround(((1 - f) * pa[ax] + f * pb[ax]) / h[ax]);
    const index_t j = q[0] + d.x * (q[1] + d.y * q[2]);
    if (j == last) continue;
    last = j;
    if (void_mask[j] || !host[labels[j]] ||
        (grey && beside_brighter_solid(j, labels, void_mask, host, *grey, rim_of_solid_above))) {
      if (run && !run_ok()) return false;
      run = 0, run_grey = 0;
      continue;
    }
    ++run;
    if (grey) run_grey += (*grey)[j];
  }
  return !run || run_ok();
}

// Joins groups that are pieces of one crack interrupted by what lies in its plane (step 4 of
// detection.h, after coplanar_groups): a disc through the electrolyte between stiff particles is
// cut by the particles it meets, and where it runs through the host the PSF lifts part of its
// opening above the threshold, so its labelled void falls apart into pieces farther apart than
// join_gap_vox. Two groups of ≥ min_voxels voxels whose closest voxels lie within bridge_max_um
// are joined when the smaller lies on the larger one's plane (as in coplanar_groups: every voxel
// within 1.5 voxels of it, the larger with aspect ≥ 2, normals within 20° when the smaller is
// sheet-like too) and the straight path between those closest voxels crosses no intact host:
// apart from void, it runs through the other solid (the particle that bridges the crack) or
// through host voxels that are on average at least as dark as dark_below (the crack, half open
// in the grey); without grey, through at most join_gap_vox host voxels. Two pore films or
// pieces of separate cracks have bright host between them. group[c] is updated to the smallest
// component id of its merged group.
void bridge_groups(const Clusters& comps, const std::vector<std::vector<index_t>>& members,
                   std::vector<std::uint32_t>& group, const Volume<std::uint8_t>& labels,
                   const Volume<std::uint8_t>& void_mask, const std::array<bool, 256>& host, const Volume<float>* grey,
                   double dark_below, const CrackDetectionOptions& o) {
  if (!(o.bridge_max_um > 0)) return;
  const Dims d = labels.dims();
  const Vec3 h = labels.spacing_um;
  const double h_max = std::max({h[0], h[1], h[2]});
  std::vector<std::vector<index_t>> voxels(comps.count + 1);
  for (std::uint32_t c = 1; c <= comps.count; ++c)
    voxels[group[c]].insert(voxels[group[c]].end(), members[c].begin(), members[c].end());
  struct Piece {
    std::uint32_t root;
    PrincipalAxes axes;
    double aspect;
    index_t lo[3], hi[3];
  };
  // Each group's axes and box in parallel, kept in group order.
  std::vector<Piece> of_group(comps.count + 1);
  tbb::parallel_for(std::uint32_t{1}, comps.count + 1, [&](std::uint32_t c) {
    if (static_cast<index_t>(voxels[c].size()) < o.min_voxels) return;
    Piece& p = of_group[c];
    p = {c, principal_axes(voxels[c], d, h), 0, {d.x, d.y, d.z}, {0, 0, 0}};
    p.aspect = sheet_aspect(p.axes);
    for (index_t i : voxels[c]) {
      const index_t q[3] = {i % d.x, (i / d.x) % d.y, i / (d.x * d.y)};
      for (int a = 0; a < 3; ++a) p.lo[a] = std::min(p.lo[a], q[a]), p.hi[a] = std::max(p.hi[a], q[a]);
    }
  });
  std::vector<Piece> pieces;
  for (std::uint32_t c = 1; c <= comps.count; ++c)
    if (static_cast<index_t>(voxels[c].size()) >= o.min_voxels) pieces.push_back(of_group[c]);
  of_group = {};
  auto bridged = [&](index_t a, index_t b) {
    return crosses_no_intact_host(a, b, labels, void_mask, host, grey, dark_below, o.join_gap_vox);
  };
  const double reach = o.bridge_max_um;
  std::vector<std::pair<std::size_t, std::size_t>> pairs;
  for (std::size_t a = 0; a < pieces.size(); ++a)
    for (std::size_t b = a + 1; b < pieces.size(); ++b) {
      bool near = true;
      for (int ax = 0; ax < 3 && near; ++ax) {
        const index_t gap = std::max(pieces[a].lo[ax] - pieces[b].hi[ax], pieces[b].lo[ax] - pieces[a].hi[ax]);
        near = static_cast<double>(gap) * h[ax] <= reach;
      }
      if (near) pairs.emplace_back(a, b);
    }
  std::vector<std::uint8_t> join(pairs.size(), 0);
  tbb::parallel_for(std::size_t{0}, pairs.size(), [&](std::size_t k) {
    const Piece& pa = pieces[pairs[k].first];
    const Piece& pb = pieces[pairs[k].second];
    const bool a_larger = voxels[pa.root].size() >= voxels[pb.root].size();
    const Piece& big = a_larger ? pa : pb;
    const Piece& small = a_larger ? pb : pa;
    if (big.aspect < 2) return;
    const Vec3 &n = big.axes.axis[2], &m = small.axes.axis[2];
    if (small.aspect >= 2) {
      // Two sheets: their planes agree (a small sheet's far edge may stray from a plane fitted
      // to a piece a few voxels across, so the centroids are compared, each way).
      if (std::abs(n[0] * m[0] + n[1] * m[1] + n[2] * m[2]) < std::cos(20 * M_PI / 180) ||
          plane_offset(big.axes, small.axes.centroid_um) > 1.5 * h_max ||
          plane_offset(small.axes, big.axes.centroid_um) > 1.5 * h_max)
        return;
    } else if (!lies_on_plane(big.axes, voxels[small.root], d, h)) {
      return;
    }
    // The closest voxels of the two (a pair farther apart than reach is not joined anyway).
    const VoxelPair closest = closest_voxel_pair(voxels[small.root], small.lo, small.hi, voxels[big.root], reach, d, h);
    if (std::sqrt(closest.squared_um2) > reach) return;
    join[k] = bridged(closest.outer, closest.inner);
  });
  std::vector<std::uint32_t> parent(comps.count + 1);
  for (std::uint32_t c = 0; c <= comps.count; ++c) parent[c] = c;
  auto find = [&](std::uint32_t c) {
    while (parent[c] != c) c = parent[c] = parent[parent[c]];
    return c;
  };
  for (std::size_t k = 0; k < pairs.size(); ++k) {
    if (!join[k]) continue;
    const std::uint32_t ra = find(pieces[pairs[k].first].root), rb = find(pieces[pairs[k].second].root);
    if (ra != rb) parent[std::max(ra, rb)] = std::min(ra, rb);
  }
  for (std::uint32_t c = 1; c <= comps.count; ++c) group[c] = find(group[c]);
}

// Splits one accepted crack into the planes of touching cracks (two discs that cross or touch
// form one 26-connected sheet of aspect ≥ min_aspect; the recall and every per-crack number
// want them apart). Sequential plane fitting, deterministic: candidate planes are the local
// principal planes (voxels within 4 voxels) at every (n/64)-th voxel of the set; the one
// with most voxels within tol of it is refitted to those voxels once, and they form a piece
// when it has ≥ min_voxels voxels and aspect ≥ min_aspect; repeated on what is left. Pieces whose
// planes agree (normals within 20°, each centroid within 2·tol of the other's plane) are
// rejoined (the layers of one thick crack); voxels left over go to the piece whose plane is
// nearest. Returns one piece (the input) when nothing splits.
std::vector<std::vector<index_t>> split_planes(const std::vector<index_t>& voxels, const Dims& d, const Vec3& h,
                                               const CrackDetectionOptions& o) {
  const double h_max = std::max({h[0], h[1], h[2]});
  const double tol = 1.5 * h_max;
  std::vector<std::vector<index_t>> pieces;
  if (static_cast<index_t>(voxels.size()) < 2 * o.min_voxels) return {voxels};
  auto centre = [&](index_t i) { return voxel_centre_um(i, d, h); };
  auto offset = [&](const PrincipalAxes& p, index_t i) {
    const Vec3 c = centre(i);
    const Vec3& n = p.axis[2];
    return (c[0] - p.centroid_um[0]) * n[0] + (c[1] - p.centroid_um[1]) * n[1] + (c[2] - p.centroid_um[2]) * n[2];
  };
  // Box mask of the remaining voxels for the local planes.
  index_t lo[3] = {d.x, d.y, d.z}, hi[3] = {0, 0, 0};
  for (index_t i : voxels) {
    const index_t c[3] = {i % d.x, (i / d.x) % d.y, i / (d.x * d.y)};
    for (int a = 0; a < 3; ++a) lo[a] = std::min(lo[a], c[a]), hi[a] = std::max(hi[a], c[a]);
  }
  const index_t bx = hi[0] - lo[0] + 1, by = hi[1] - lo[1] + 1, bz = hi[2] - lo[2] + 1;
  std::vector<std::uint8_t> box(static_cast<std::size_t>(bx * by * bz), 0);
  auto box_at = [&](index_t i) -> std::uint8_t& {
    return box[static_cast<std::size_t>((i % d.x - lo[0]) + bx * ((i / d.x) % d.y - lo[1]) +
                                        bx * by * (i / (d.x * d.y) - lo[2]))];
  };
  for (index_t i : voxels) box_at(i) = 1;
  std::vector<index_t> rest = voxels;
  std::vector<PrincipalAxes> planes;
  const index_t r = 4;
  while (static_cast<index_t>(rest.size()) >= o.min_voxels) {
    const std::size_t stride = std::max<std::size_t>(1, rest.size() / 64);
    PrincipalAxes best;
    std::size_t best_count = 0;
    for (std::size_t s = 0; s < rest.size(); s += stride) {
      const index_t i = rest[s];
      const index_t x = i % d.x, y = (i / d.x) % d.y, z = i / (d.x * d.y);
      std::vector<index_t> local;
      for (index_t w = std::max(lo[2], z - r); w <= std::min(hi[2], z + r); ++w)
        for (index_t v = std::max(lo[1], y - r); v <= std::min(hi[1], y + r); ++v)
          for (index_t u = std::max(lo[0], x - r); u <= std::min(hi[0], x + r); ++u) {
            const index_t j = u + d.x * (v + d.y * w);
            if (box_at(j)) local.push_back(j);
          }
      if (local.size() < 8) continue;
      const PrincipalAxes p = principal_axes(local, d, h);
      std::size_t count = 0;
      for (index_t j : rest) count += std::abs(offset(p, j)) <= tol;
      if (count > best_count) best_count = count, best = p;
    }
    if (best_count == 0) break;
    std::vector<index_t> in;
    for (index_t j : rest)
      if (std::abs(offset(best, j)) <= tol) in.push_back(j);
    const PrincipalAxes refit = principal_axes(in, d, h);
    in.clear();
    std::vector<index_t> out;
    for (index_t j : rest) (std::abs(offset(refit, j)) <= tol ? in : out).push_back(j);
    if (static_cast<index_t>(in.size()) < o.min_voxels || sheet_aspect(principal_axes(in, d, h)) < o.min_aspect) break;
    for (index_t j : in) box_at(j) = 0;
    planes.push_back(principal_axes(in, d, h));
    pieces.push_back(std::move(in));
    rest = std::move(out);
  }
  if (pieces.size() < 2) return {voxels};
  // Rejoin pieces of one plane (union–find over pairs).
  std::vector<std::size_t> parent(pieces.size());
  for (std::size_t a = 0; a < parent.size(); ++a) parent[a] = a;
  auto find = [&](std::size_t a) {
    while (parent[a] != a) a = parent[a] = parent[parent[a]];
    return a;
  };
  auto off_plane = [](const PrincipalAxes& p, const Vec3& c) {
    const Vec3& n = p.axis[2];
    return std::abs((c[0] - p.centroid_um[0]) * n[0] + (c[1] - p.centroid_um[1]) * n[1] +
                    (c[2] - p.centroid_um[2]) * n[2]);
  };
  for (std::size_t a = 0; a < pieces.size(); ++a)
    for (std::size_t b = a + 1; b < pieces.size(); ++b) {
      const Vec3 &na = planes[a].axis[2], &nb = planes[b].axis[2];
      const double cosang = std::abs(na[0] * nb[0] + na[1] * nb[1] + na[2] * nb[2]);
      if (cosang >= std::cos(20 * M_PI / 180) && off_plane(planes[a], planes[b].centroid_um) <= 2 * tol &&
          off_plane(planes[b], planes[a].centroid_um) <= 2 * tol)
        parent[find(b)] = find(a);
    }
  std::vector<std::vector<index_t>> joined(pieces.size());
  for (std::size_t a = 0; a < pieces.size(); ++a)
    joined[find(a)].insert(joined[find(a)].end(), pieces[a].begin(), pieces[a].end());
  // Left-over voxels: to the piece whose plane is nearest.
  for (index_t j : rest) {
    std::size_t near = 0;
    double dmin = std::numeric_limits<double>::infinity();
    for (std::size_t a = 0; a < pieces.size(); ++a) {
      const double dist = std::abs(offset(planes[a], j));
      if (dist < dmin) dmin = dist, near = a;
    }
    joined[find(near)].push_back(j);
  }
  std::vector<std::vector<index_t>> result;
  for (auto& piece : joined)
    if (!piece.empty()) result.push_back(std::move(piece));
  return result;
}

// Is voxel i a crack voxel seen along the unit normal n: walking from it along +n and −n, a
// host voxel that is not void (the crack's two walls) comes within a void run of at most
// max_run_um? A slab cut through a pore network fails (the films cross the slab, so the void
// runs on along n), a crack passes (host right above and below it). The walk's voxel offsets
// depend on n alone, so they are taken once per normal and the test is then asked of many voxels.
class Sandwich {
 public:
  Sandwich(const Vec3& n, const Volume<std::uint8_t>& void_mask, const Volume<std::uint8_t>& labels,
           const std::array<bool, 256>& host, double max_run_um)
      : void_mask_(void_mask), labels_(labels), host_(host), max_run_um_(max_run_um) {
    const Vec3& h = labels.spacing_um;
    step_ = std::abs(n[0]) * h[0] + std::abs(n[1]) * h[1] + std::abs(n[2]) * h[2];
    steps_ = static_cast<int>(std::ceil(max_run_um / step_)) + 1;
    walk_.resize(2 * static_cast<std::size_t>(steps_));
    for (int side = 0; side < 2; ++side) {
      const double sgn = side ? -1.0 : 1.0;
      for (int t = 1; t <= steps_; ++t)
        for (int k = 0; k < 3; ++k) walk_[side * steps_ + t - 1][k] = round_half_away(sgn * t * step_ * n[k] / h[k]);
    }
  }
  bool operator()(index_t i) const {
    const Dims d = labels_.dims();
    const index_t p[3] = {i % d.x, (i / d.x) % d.y, i / (d.x * d.y)};
    int reach[2] = {0, 0};
    for (int side = 0; side < 2; ++side) {
      for (int t = 1; t <= steps_ && !reach[side]; ++t) {
        const std::array<index_t, 3>& off = walk_[side * steps_ + t - 1];
        index_t q[3];
        for (int k = 0; k < 3; ++k) {
          q[k] = p[k] + off[k];
          if (q[k] < 0 || q[k] >= d[k]) return false;
        }
        const index_t j = q[0] + d.x * (q[1] + d.y * q[2]);
        if (host_[labels_[j]] && !void_mask_[j]) reach[side] = t;
      }
      if (!reach[side]) return false;
    }
    return (reach[0] + reach[1] - 1) * step_ <= max_run_um_ * (1 + 1e-6);
  }

 private:
  const Volume<std::uint8_t>& void_mask_;
  const Volume<std::uint8_t>& labels_;
  const std::array<bool, 256>& host_;
  double max_run_um_, step_;
  int steps_;
  std::vector<std::array<index_t, 3>> walk_;  // per side (+n, then −n), the offsets of steps 1..steps_
};

// The Hessian (grey / µm²) at voxel i of the grey smoothed by a Gaussian of one finest voxel
// (taps `kernels`, per axis), by central differences on the 3³ block around the voxel, which is
// smoothed from a patch of the raw grey (replicated border, as gaussian_smooth).
using Hessian = std::array<std::array<double, 3>, 3>;
Hessian smoothed_hessian(index_t i, const Volume<float>& grey, const std::array<std::vector<double>, 3>& kernels) {
  const Dims d = grey.dims();
  const Vec3& h = grey.spacing_um;
  const index_t p[3] = {i % d.x, (i / d.x) % d.y, i / (d.x * d.y)};
  index_t r[3], m[3];  // kernel radius and patch width per axis
  for (int a = 0; a < 3; ++a) r[a] = static_cast<index_t>(kernels[a].size() / 2), m[a] = 3 + 2 * r[a];
  std::vector<double> patch(static_cast<std::size_t>(m[0] * m[1] * m[2]));
  for (index_t z = 0; z < m[2]; ++z)
    for (index_t y = 0; y < m[1]; ++y)
      for (index_t x = 0; x < m[0]; ++x) {
        const index_t q[3] = {std::clamp<index_t>(p[0] - 1 - r[0] + x, 0, d.x - 1),
                              std::clamp<index_t>(p[1] - 1 - r[1] + y, 0, d.y - 1),
                              std::clamp<index_t>(p[2] - 1 - r[2] + z, 0, d.z - 1)};
        patch[static_cast<std::size_t>(x + m[0] * (y + m[1] * z))] = grey(q[0], q[1], q[2]);
      }
  std::vector<double> sx(static_cast<std::size_t>(3 * m[1] * m[2]), 0.0);
  for (index_t z = 0; z < m[2]; ++z)
    for (index_t y = 0; y < m[1]; ++y)
      for (index_t x = 0; x < 3; ++x)
        for (index_t t = 0; t <= 2 * r[0]; ++t)
          sx[static_cast<std::size_t>(x + 3 * (y + m[1] * z))] +=
              kernels[0][static_cast<std::size_t>(t)] * patch[static_cast<std::size_t>(x + t + m[0] * (y + m[1] * z))];
  std::vector<double> sy(static_cast<std::size_t>(9 * m[2]), 0.0);
  for (index_t z = 0; z < m[2]; ++z)
    for (index_t y = 0; y < 3; ++y)
      for (index_t x = 0; x < 3; ++x)
        for (index_t t = 0; t <= 2 * r[1]; ++t)
          sy[static_cast<std::size_t>(x + 3 * (y + 3 * z))] +=
              kernels[1][static_cast<std::size_t>(t)] * sx[static_cast<std::size_t>(x + 3 * (y + t + m[1] * z))];
  double s[3][3][3] = {};  // [x][y][z]
  for (index_t z = 0; z < 3; ++z)
    for (index_t y = 0; y < 3; ++y)
      for (index_t x = 0; x < 3; ++x)
        for (index_t t = 0; t <= 2 * r[2]; ++t)
          s[x][y][z] +=
              kernels[2][static_cast<std::size_t>(t)] * sy[static_cast<std::size_t>(x + 3 * (y + 3 * (z + t)))];
  Hessian H;
  H[0][0] = (s[2][1][1] - 2 * s[1][1][1] + s[0][1][1]) / (h[0] * h[0]);
  H[1][1] = (s[1][2][1] - 2 * s[1][1][1] + s[1][0][1]) / (h[1] * h[1]);
  H[2][2] = (s[1][1][2] - 2 * s[1][1][1] + s[1][1][0]) / (h[2] * h[2]);
  H[0][1] = H[1][0] = (s[2][2][1] - s[2][0][1] - s[0][2][1] + s[0][0][1]) / (4 * h[0] * h[1]);
  H[0][2] = H[2][0] = (s[2][1][2] - s[2][1][0] - s[0][1][2] + s[0][1][0]) / (4 * h[0] * h[2]);
  H[1][2] = H[2][1] = (s[1][2][2] - s[1][2][0] - s[1][0][2] + s[1][0][0]) / (4 * h[1] * h[2]);
  return H;
}

double quadratic_form(const Hessian& H, const Vec3& a, const Vec3& b) {
  double sum = 0;
  for (int j = 0; j < 3; ++j)
    for (int k = 0; k < 3; ++k) sum += a[j] * H[j][k] * b[k];
  return sum;
}

// The grey profile across a cut: the smoothed grey's curvature along the cut's normal (across)
// and the largest along a direction in its plane (in_plane), each the mean over every
// (n/128)-th voxel of the cut (grey / µm²). A crack is one dark valley across its plane: it
// curves the grey upward across the plane (by about 0.2 × contrast per voxel² for two voxels
// open under a PSF of one voxel) and hardly along it, wherever one samples it. A slab cut
// through pores or curved compaction films meets dark structures at every angle: the mean
// curvature is shared between the normal and the plane, or small where a slab is cut through
// noise ridges at the host level.
struct GreyValley {
  double across = 0, in_plane = 0;
};
GreyValley grey_valley(const std::vector<index_t>& voxels, const PrincipalAxes& plane, const Volume<float>& grey,
                       const std::array<std::vector<double>, 3>& kernels) {
  const Vec3 &n = plane.axis[2], &u = plane.axis[0], &v = plane.axis[1];
  const std::size_t stride = std::max<std::size_t>(1, voxels.size() / 128);
  double across = 0, uu = 0, uv = 0, vv = 0;
  std::size_t tried = 0;
  for (std::size_t s = 0; s < voxels.size(); s += stride, ++tried) {
    const Hessian H = smoothed_hessian(voxels[s], grey, kernels);
    across += quadratic_form(H, n, n), uu += quadratic_form(H, u, u), uv += quadratic_form(H, u, v),
        vv += quadratic_form(H, v, v);
  }
  if (tried == 0) return {};
  const double k = 1.0 / static_cast<double>(tried);
  const double a = uu * k, b = uv * k, c = vv * k;  // the mean in-plane curvature (2×2, basis u, v)
  return {across * k, (a + c) / 2 + std::sqrt((a - c) * (a - c) / 4 + b * b)};
}

// Flat where it lies: at ≥ min_share of every (n/128)-th voxel of a cut, the void within 3 voxels
// has a principal plane within 25° of the cut's (unit normal n); a slab cut through curved pore
// films is flat only as a cut.
bool flat_in_place(const std::vector<index_t>& voxels, const Vec3& n, const Volume<std::uint8_t>& void_mask,
                   double min_share) {
  const Dims d = void_mask.dims();
  const double cos_max = std::cos(25 * M_PI / 180);
  const std::size_t stride = std::max<std::size_t>(1, voxels.size() / 128);
  std::size_t flat = 0, tried = 0;
  for (std::size_t s = 0; s < voxels.size(); s += stride, ++tried) {
    const index_t i = voxels[s];
    const index_t x = i % d.x, y = (i / d.x) % d.y, z = i / (d.x * d.y);
    std::vector<index_t> local;
    for (index_t w = std::max<index_t>(0, z - 3); w <= std::min(d.z - 1, z + 3); ++w)
      for (index_t v = std::max<index_t>(0, y - 3); v <= std::min(d.y - 1, y + 3); ++v)
        for (index_t u = std::max<index_t>(0, x - 3); u <= std::min(d.x - 1, x + 3); ++u) {
          const index_t j = u + d.x * (v + d.y * w);
          if (void_mask[j]) local.push_back(j);
        }
    const Vec3 m = principal_axes(local, d, void_mask.spacing_um).axis[2];  // a copy: the axes are a temporary
    flat += std::abs(n[0] * m[0] + n[1] * m[1] + n[2] * m[2]) >= cos_max;
  }
  return static_cast<double>(flat) >= min_share * static_cast<double>(tried);
}

// How far a cut's valley runs on past its void, in units of the contrast: over the host voxels
// on its plane (within half a finest voxel) 2–5 voxels (Chebyshev) from the cut, the mean of the
// grey two finest voxels away on either side along the normal, averaged, minus the grey there.
// A crack runs on through the host where the PSF lifted its opening above the threshold, so the
// host on its plane still dips across it; a compaction pore ends at the particles that bound it,
// and the host on its plane beyond is intact (no dip). NaN when no such host voxel exists.
double valley_beyond_void(const std::vector<index_t>& cut, const PrincipalAxes& plane,
                          const Volume<std::uint8_t>& labels, const Volume<std::uint8_t>& void_mask,
                          const std::array<bool, 256>& host, const Volume<float>& grey, double contrast) {
  const Dims d = labels.dims();
  const Vec3& h = labels.spacing_um;
  const double h_min = std::min({h[0], h[1], h[2]});
  const VoxelBox cb = voxel_box(cut, d);
  constexpr index_t far = 5;
  index_t lo[3], hi[3], n[3];
  for (int a = 0; a < 3; ++a)
    lo[a] = std::max<index_t>(0, cb.lo[a] - far), hi[a] = std::min(d[a] - 1, cb.hi[a] + far), n[a] = hi[a] - lo[a] + 1;
  auto at = [&](index_t x, index_t y, index_t z) {
    return static_cast<std::size_t>((x - lo[0]) + n[0] * ((y - lo[1]) + n[1] * (z - lo[2])));
  };
  // Chebyshev distance from the cut (26-neighbour breadth-first), up to `far`.
  std::vector<std::uint8_t> dist(static_cast<std::size_t>(n[0] * n[1] * n[2]), far + 1);
  std::vector<index_t> front;
  for (index_t i : cut) dist[at(i % d.x, (i / d.x) % d.y, i / (d.x * d.y))] = 0, front.push_back(i);
  for (std::uint8_t r = 1; r <= far; ++r) {
    std::vector<index_t> next;
    for (index_t i : front) {
      const index_t x = i % d.x, y = (i / d.x) % d.y, z = i / (d.x * d.y);
      for (index_t w = std::max(lo[2], z - 1); w <= std::min(hi[2], z + 1); ++w)
        for (index_t v = std::max(lo[1], y - 1); v <= std::min(hi[1], y + 1); ++v)
          for (index_t u = std::max(lo[0], x - 1); u <= std::min(hi[0], x + 1); ++u)
            if (std::uint8_t& m = dist[at(u, v, w)]; m > r) m = r, next.push_back(u + d.x * (v + d.y * w));
    }
    front = std::move(next);
  }
  const Vec3& nn = plane.axis[2];
  index_t off[3];
  for (int a = 0; a < 3; ++a) off[a] = round_half_away(2 * h_min * nn[a] / h[a]);
  double sum = 0;
  index_t count = 0;
  for (index_t z = lo[2]; z <= hi[2]; ++z)
    for (index_t y = lo[1]; y <= hi[1]; ++y)
      for (index_t x = lo[0]; x <= hi[0]; ++x) {
        if (dist[at(x, y, z)] < 2 || dist[at(x, y, z)] > far) continue;
        const index_t i = x + d.x * (y + d.y * z);
        if (!host[labels[i]] || void_mask[i]) continue;
        if (std::abs(plane_offset(plane, voxel_centre_um(i, d, h))) > 0.5 * h_min) continue;
        const index_t p[3] = {x, y, z};
        index_t a[3], b[3];
        bool inside = true;
        for (int k = 0; k < 3; ++k) {
          a[k] = p[k] + off[k], b[k] = p[k] - off[k];
          inside = inside && a[k] >= 0 && b[k] >= 0 && a[k] < d[k] && b[k] < d[k];
        }
        if (!inside) continue;
        const double side = (grey(a[0], a[1], a[2]) + grey(b[0], b[1], b[2])) / 2;
        sum += side - grey[i], ++count;
      }
  return count ? sum / static_cast<double>(count) / contrast : std::numeric_limits<double>::quiet_NaN();
}

// One dark sheet where the cut lies (step 4b's last tests), by either of two pieces of evidence:
// the grey is one valley across the cut (the labelled void of a crack is holey, and pores beside
// it tilt the void's local plane), or the void around its voxels is flat in the cut's plane (where
// pores beside the crack curve the grey along it); a slab cut through pores or curved films has
// neither. With grey, also dark on average: a sheet of noise ridges (host-labelled, from the grey
// branch) is walled by host too but sits at the host level.
bool one_dark_sheet(const std::vector<index_t>& cut, const PrincipalAxes& plane, const Volume<std::uint8_t>& void_mask,
                    const Volume<float>* grey, const std::array<std::vector<double>, 3>& valley_kernels,
                    double valley_floor, double dark_below, const CrackDetectionOptions& o) {
  const bool by_valley = grey && o.cut_min_valley > 0, by_flatness = o.cut_min_flat > 0;
  if (by_valley || by_flatness) {
    bool one_sheet = false;
    if (by_valley) {
      const GreyValley valley = grey_valley(cut, plane, *grey, valley_kernels);
      one_sheet = valley.across >= valley_floor && valley.across >= o.cut_valley_ratio * valley.in_plane;
    }
    if (!one_sheet && by_flatness) one_sheet = flat_in_place(cut, plane.axis[2], void_mask, o.cut_min_flat);
    if (!one_sheet) return false;
  }
  if (!grey) return true;
  double sum = 0;
  for (index_t i : cut) sum += (*grey)[i];
  return sum / static_cast<double>(cut.size()) <= dark_below;
}

// The tests a cut crack of sheet aspect `aspect` passes: those of o, relaxed for a long cut
// (cut_long_aspect): a crack through a thick pore group has voxels inside the pore, void on along
// its normal, and the pore curves the grey along its plane (seed 2's 250 MPa disc in 128³: 63 %
// sandwiched, a valley 1.7 × the in-plane curvature; aspect 14.7). Measured on the 128³ images of
// bench_cracks_recall: the slabs cut through pore networks as long are shallower valleys (under the
// floor) or less sandwiched, and a pore cut of aspect 10.3 passed at a ratio of 1.54 (hence 12).
// Only where the valley is judged (with grey): its depth is what keeps those slabs out.
CrackDetectionOptions cut_crack_tests(double aspect, bool with_grey, const CrackDetectionOptions& o) {
  CrackDetectionOptions t = o;
  if (with_grey && o.cut_min_valley > 0 && o.cut_long_aspect > 0 && aspect >= o.cut_long_aspect) {
    t.cut_min_sandwiched = std::min(o.cut_min_sandwiched, o.cut_long_min_sandwiched);
    t.cut_valley_ratio = std::min(o.cut_valley_ratio, o.cut_long_valley_ratio);
  }
  return t;
}

// Crack planes cut out of a group that failed the sheet test (a holey crack merged with pores
// or with other debris); step 4b of detection.h. Sequential plane fitting as in split_planes,
// but each candidate plane is scored by its sandwiched voxels and every plane tried is removed:
// of the voxels within 1.5 voxels of the best plane (refitted once to its sandwiched voxels),
// the cluster (voxels within 2 voxels of each other) holding most sandwiched voxels is a crack
// when it passes the size, sandwiched share, aspect, flatness and (with grey) darkness tests.
// When none does, the same planes yield the group's fragments: the clusters that pass the tests of
// a piece (≥ min_voxels, aspect ≥ 2, sandwiched share and, with grey, darkness — not the one-sheet
// tests, which a piece a few voxels across cannot pass alone), from the same sequence of planes
// carried on while pieces of min_voxels remain. One pass for both: the planes tried do not depend
// on the size asked for. Deterministic.
struct CutPlanes {
  std::vector<std::vector<index_t>> cracks;
  std::vector<std::vector<index_t>> fragments;  // empty when a crack was cut
};
CutPlanes cut_sandwiched_planes(const std::vector<index_t>& voxels, const Volume<std::uint8_t>& void_mask,
                                const Volume<std::uint8_t>& labels, const std::array<bool, 256>& host,
                                double max_aperture_um, const Volume<float>* grey, double dark_below,
                                double valley_floor, const CrackDetectionOptions& o) {
  const Dims d = labels.dims();
  const Vec3 h = labels.spacing_um;
  const double tol = 1.5 * std::max({h[0], h[1], h[2]});
  CutPlanes found;
  const index_t least = std::max(o.min_voxels, o.cut_min_voxels), least_piece = std::min(o.min_voxels, least);
  if (static_cast<index_t>(voxels.size()) < least_piece) return found;
  CrackDetectionOptions piece = o;  // a fragment's one-sheet tests: darkness alone
  piece.cut_min_valley = 0;
  piece.cut_min_flat = 0;
  bool cutting = true;  // the crack search still runs (it stops where fewer than `least` voxels remain)
  auto offset = [](const PrincipalAxes& p, const Vec3& c) {
    const Vec3& n = p.axis[2];
    return (c[0] - p.centroid_um[0]) * n[0] + (c[1] - p.centroid_um[1]) * n[1] + (c[2] - p.centroid_um[2]) * n[2];
  };
  // The set-up passes over the voxels run in parallel: one merged pore group is most of the
  // stage's voxels, and its cut attempts run one after another.
  const VoxelBox vbox = voxel_box(voxels, d);
  const index_t(&lo)[3] = vbox.lo;
  const index_t(&hi)[3] = vbox.hi;
  const index_t bx = hi[0] - lo[0] + 1, by = hi[1] - lo[1] + 1, bz = hi[2] - lo[2] + 1;
  // Box of the remaining voxels (1); the cluster pass marks the in-plane voxels 2, visited 3.
  std::vector<std::uint8_t> box(static_cast<std::size_t>(bx * by * bz), 0);
  auto box_index = [&](index_t x, index_t y, index_t z) {
    return static_cast<std::size_t>((x - lo[0]) + bx * ((y - lo[1]) + by * (z - lo[2])));
  };
  auto box_at = [&](index_t i) -> std::uint8_t& { return box[box_index(i % d.x, (i / d.x) % d.y, i / (d.x * d.y))]; };
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, voxels.size(), 1 << 14),
                    [&](const tbb::blocked_range<std::size_t>& qs) {
                      for (std::size_t q = qs.begin(); q != qs.end(); ++q) box_at(voxels[q]) = 1;
                    });
  std::vector<index_t> rest = voxels;
  // Voxel centres of the voxels still in play, kept beside their indices: the plane offsets below
  // are taken many times per voxel.
  std::vector<Vec3> rest_um(rest.size());
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, rest.size(), 1 << 14),
                    [&](const tbb::blocked_range<std::size_t>& qs) {
                      for (std::size_t q = qs.begin(); q != qs.end(); ++q) rest_um[q] = voxel_centre_um(rest[q], d, h);
                    });
  // How many voxels still in play lie within tol of plane p (the offsets as `offset` takes them, with
  // the plane's centroid and normal held in locals so that the loop runs without reloading them).
  auto count_within = [&](const PrincipalAxes& p) {
    const Vec3 c0 = p.centroid_um, n = p.axis[2];
    std::size_t within = 0;
    for (const Vec3& c_um : rest_um)
      within += std::abs((c_um[0] - c0[0]) * n[0] + (c_um[1] - c0[1]) * n[1] + (c_um[2] - c0[2]) * n[2]) <= tol;
    return within;
  };
  const index_t r = 4;
  std::array<std::vector<double>, 3> valley_kernels;  // σ = one finest voxel, in voxels per axis
  if (grey && o.cut_min_valley > 0) {
    const double h_min = std::min({h[0], h[1], h[2]});
    for (std::size_t a = 0; a < 3; ++a) valley_kernels[a] = gaussian_kernel(h_min / h[a]);
  }
  for (int attempt = 0; attempt < o.cut_max_planes && static_cast<index_t>(rest.size()) >= least_piece; ++attempt) {
    cutting = cutting && static_cast<index_t>(rest.size()) >= least;
    if (!cutting && !found.cracks.empty()) break;  // the fragments are wanted only without a crack
    // Candidate planes at every (n/64)-th voxel, scored in parallel, the best (the first of the
    // highest count) taken. First each candidate's plane and its voxels within tol: a bound of
    // its count of sandwiched voxels.
    const std::size_t stride = std::max<std::size_t>(1, rest.size() / 64);
    const std::size_t candidates = (rest.size() + stride - 1) / stride;
    std::vector<PrincipalAxes> plane_of(candidates);
    std::vector<std::size_t> count_of(candidates, 0), within_of(candidates, 0);
    tbb::parallel_for(std::size_t{0}, candidates, [&](std::size_t c) {
      const index_t i = rest[c * stride];
      const index_t x = i % d.x, y = (i / d.x) % d.y, z = i / (d.x * d.y);
      std::vector<index_t> local;
      const index_t u0 = std::max(lo[0], x - r), u1 = std::min(hi[0], x + r);
      for (index_t w = std::max(lo[2], z - r); w <= std::min(hi[2], z + r); ++w)
        for (index_t v = std::max(lo[1], y - r); v <= std::min(hi[1], y + r); ++v) {
          const std::uint8_t* row = box.data() + box_index(u0, v, w);  // the box row, read directly
          for (index_t u = u0; u <= u1; ++u)
            if (row[u - u0]) local.push_back(u + d.x * (v + d.y * w));
        }
      if (local.size() < 8) return;
      const PrincipalAxes p = principal_axes(local, d, h);
      if (!Sandwich(p.axis[2], void_mask, labels, host, max_aperture_um)(i)) return;
      plane_of[c] = p, within_of[c] = count_within(p);
    });
    // Then the counts, largest bound first. A candidate is dropped once the voxels it has left to
    // test cannot lift its count to one already reached: it cannot be the best, and every
    // candidate of the highest count is counted in full, so the choice is that of counting all.
    std::vector<std::size_t> by_bound(candidates);
    std::iota(by_bound.begin(), by_bound.end(), std::size_t{0});
    std::stable_sort(by_bound.begin(), by_bound.end(),
                     [&](std::size_t a, std::size_t b) { return within_of[a] > within_of[b]; });
    std::atomic<std::size_t> reached{0};
    tbb::parallel_for(std::size_t{0}, candidates, [&](std::size_t k) {
      const std::size_t c = by_bound[k];
      std::size_t left = within_of[c], count = 0;
      if (left == 0 || left < reached.load(std::memory_order_relaxed)) return;
      const PrincipalAxes& p = plane_of[c];
      const Sandwich walled(p.axis[2], void_mask, labels, host, max_aperture_um);
      for (std::size_t q = 0; q < rest.size() && left; ++q) {
        if (!(std::abs(offset(p, rest_um[q])) <= tol)) continue;
        --left;
        count += walled(rest[q]);
        if (count + left < reached.load(std::memory_order_relaxed)) return;
      }
      count_of[c] = count;
      for (std::size_t seen = reached.load(); count > seen && !reached.compare_exchange_weak(seen, count);) {
      }
    });
    PrincipalAxes best;
    std::size_t best_count = 0;
    for (std::size_t c = 0; c < candidates; ++c)
      if (count_of[c] > best_count) best_count = count_of[c], best = plane_of[c];
    cutting = cutting && best_count >= static_cast<std::size_t>(least);
    if (best_count < static_cast<std::size_t>(least_piece) || (!cutting && !found.cracks.empty())) break;
    // The best plane's sandwiched voxels (tested in parallel, gathered in order).
    std::vector<std::uint8_t> flag(rest.size(), 0);
    const Sandwich walled_best(best.axis[2], void_mask, labels, host, max_aperture_um);
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, rest.size(), 1024),
                      [&](const tbb::blocked_range<std::size_t>& qs) {
                        for (std::size_t q = qs.begin(); q != qs.end(); ++q)
                          flag[q] = std::abs(offset(best, rest_um[q])) <= tol && walled_best(rest[q]);
                      });
    std::vector<index_t> support;
    for (std::size_t q = 0; q < rest.size(); ++q)
      if (flag[q]) support.push_back(rest[q]);
    PrincipalAxes plane = principal_axes(support, d, h);
    // The voxels within tol of a plane (in, in order) and the rest (out); of the in-plane voxels,
    // the cluster holding most voxels sandwiched along the plane's normal (marked in the box).
    constexpr std::uint8_t walled_bit = 16;
    std::vector<index_t> in, out, best_cluster;
    std::vector<Vec3> out_um;
    std::size_t best_sandwiched = 0;
    auto gather_and_cluster = [&](const PrincipalAxes& fit) {
      flag.assign(rest.size(), 0);
      // The voxels within tol of the plane (flagged in parallel) and the rest, in order.
      tbb::parallel_for(tbb::blocked_range<std::size_t>(0, rest.size(), 1 << 14),
                        [&](const tbb::blocked_range<std::size_t>& qs) {
                          for (std::size_t q = qs.begin(); q != qs.end(); ++q)
                            flag[q] = std::abs(offset(fit, rest_um[q])) <= tol;
                        });
      // Gathered in order, in parallel: each block's in-plane count first, then each block copies
      // to its place.
      const std::size_t block = 1 << 14, blocks = (rest.size() + block - 1) / block;
      std::vector<std::size_t> in_before(blocks + 1, 0);
      tbb::parallel_for(std::size_t{0}, blocks, [&](std::size_t b) {
        const std::size_t end = std::min(rest.size(), (b + 1) * block);
        in_before[b + 1] = static_cast<std::size_t>(std::count(flag.begin() + b * block, flag.begin() + end, 1));
      });
      std::partial_sum(in_before.begin(), in_before.end(), in_before.begin());
      in.assign(in_before[blocks], 0), out.assign(rest.size() - in_before[blocks], 0);
      out_um.assign(out.size(), Vec3{0, 0, 0});
      tbb::parallel_for(std::size_t{0}, blocks, [&](std::size_t b) {
        std::size_t k = in_before[b], m = b * block - in_before[b];
        for (std::size_t q = b * block; q < std::min(rest.size(), (b + 1) * block); ++q) {
          if (flag[q]) {
            in[k++] = rest[q];
          } else {
            out[m] = rest[q];
            out_um[m++] = rest_um[q];
          }
        }
      });
      // Clusters of the in-plane voxels (within 2 voxels of each other), by flood fill in the box;
      // whether each is sandwiched along the plane's normal is tested first, in parallel,
      // and kept in the box mark's bit 4.
      flag.assign(in.size(), 0);
      const Sandwich walled_plane(fit.axis[2], void_mask, labels, host, max_aperture_um);
      tbb::parallel_for(tbb::blocked_range<std::size_t>(0, in.size(), 1024),
                        [&](const tbb::blocked_range<std::size_t>& ks) {
                          for (std::size_t k = ks.begin(); k != ks.end(); ++k) flag[k] = walled_plane(in[k]);
                        });
      for (std::size_t k = 0; k < in.size(); ++k) box_at(in[k]) = flag[k] ? 2 | walled_bit : 2;
      best_cluster.clear();
      best_sandwiched = 0;
      for (index_t seed : in) {
        if ((box_at(seed) & ~walled_bit) != 2) continue;
        std::vector<index_t> cluster{seed};
        box_at(seed) ^= 1;  // 2 → 3: visited
        for (std::size_t k = 0; k < cluster.size(); ++k) {
          const index_t i = cluster[k];
          const index_t x = i % d.x, y = (i / d.x) % d.y, z = i / (d.x * d.y);
          for (index_t w = std::max(lo[2], z - 2); w <= std::min(hi[2], z + 2); ++w)
            for (index_t v = std::max(lo[1], y - 2); v <= std::min(hi[1], y + 2); ++v)
              for (index_t u = std::max(lo[0], x - 2); u <= std::min(hi[0], x + 2); ++u) {
                std::uint8_t& m = box[box_index(u, v, w)];
                if ((m & ~walled_bit) == 2) m ^= 1, cluster.push_back(u + d.x * (v + d.y * w));
              }
        }
        std::size_t count = 0;
        for (index_t i : cluster) count += (box_at(i) & walled_bit) != 0;
        if (count > best_sandwiched || (count == best_sandwiched && cluster.size() < best_cluster.size()))
          best_sandwiched = count, best_cluster = std::move(cluster);
      }
    };
    gather_and_cluster(plane);
    // How many of the walled voxels the plane was fitted to lie outside the cluster picked: when few
    // do, the plane is already the cluster's own.
    std::size_t support_outside = support.size();
    {
      std::vector<index_t> sorted = best_cluster;
      std::sort(sorted.begin(), sorted.end());
      for (index_t i : support) support_outside -= std::binary_search(sorted.begin(), sorted.end(), i);
    }
    const bool pulled_off =
        static_cast<double>(support_outside) >= o.cut_refit_outside * static_cast<double>(support.size());
    // The plane refitted to the walled voxels of the cluster it picked, while that walls more of
    // the cluster (cut_refits): the first fit is to every walled voxel the candidate plane meets in
    // the group, and where ≥ cut_refit_outside of them are walls of pores elsewhere in a merged group
    // they tilt it off the crack's plane. Only for a cluster of a cut crack's size: a smaller piece
    // is judged as a fragment on the plane it was cut on.
    for (int refit = 0; pulled_off && static_cast<index_t>(best_cluster.size()) >= least && refit < o.cut_refits;
         ++refit) {
      std::vector<index_t> walls_own;
      for (index_t i : best_cluster)
        if (box_at(i) & walled_bit) walls_own.push_back(i);
      const PrincipalAxes own = principal_axes(walls_own, d, h);
      std::vector<index_t> in0 = std::move(in), out0 = std::move(out), cluster0 = std::move(best_cluster);
      std::vector<Vec3> out0_um = std::move(out_um);
      const std::size_t sandwiched0 = best_sandwiched;
      for (index_t j : in0) box_at(j) = 1;  // back in play
      gather_and_cluster(own);
      if (best_sandwiched > sandwiched0) {
        plane = own;
        continue;
      }
      for (index_t j : in) box_at(j) = 1;  // the refit walls no more: the plane before it stands
      in = std::move(in0), out = std::move(out0), out_um = std::move(out0_um), best_cluster = std::move(cluster0);
      best_sandwiched = sandwiched0;
      break;
    }
    for (index_t j : in) box_at(j) = 0;  // every plane tried is removed
    rest = std::move(out);
    rest_um = std::move(out_um);
    if (static_cast<index_t>(best_cluster.size()) < least_piece) continue;
    const double aspect = sheet_aspect(principal_axes(best_cluster, d, h));
    const CrackDetectionOptions crack = cut_crack_tests(aspect, grey != nullptr, o);
    auto walled = [&](double share) { return best_sandwiched >= share * static_cast<double>(best_cluster.size()); };
    if (cutting && static_cast<index_t>(best_cluster.size()) >= least && walled(crack.cut_min_sandwiched) &&
        aspect >= std::max(o.min_aspect, o.cut_min_aspect) &&
        one_dark_sheet(best_cluster, plane, void_mask, grey, valley_kernels, valley_floor, dark_below, crack)) {
      std::sort(best_cluster.begin(), best_cluster.end());
      found.cracks.push_back(std::move(best_cluster));
    } else if (found.cracks.empty() && walled(o.cut_min_sandwiched) && aspect >= 2 &&
               one_dark_sheet(best_cluster, plane, void_mask, grey, valley_kernels, 0, dark_below, piece)) {
      std::sort(best_cluster.begin(), best_cluster.end());
      found.fragments.push_back(std::move(best_cluster));
    }
  }
  if (!found.cracks.empty()) found.fragments.clear();
  return found;
}

// A fragment no other joined is a crack of its own when it is short only of the cut aspect: of a
// cut crack's size, sandwiched (as every fragment), sheet-like (min_aspect), one dark sheet by the
// valley and its ratio, and its valley runs on past its void (valley_beyond_void ≥
// cut_min_beyond × contrast): the rest of a crack whose opening the PSF lifted above the threshold,
// so that its labelled void is a piece as wide as it is long. Judged after the bridging, so that the
// pieces of one disc are joined first (judged before, each half passes alone and neither covers it).
bool lone_fragment_is_crack(const std::vector<index_t>& fragment, const Volume<std::uint8_t>& void_mask,
                            const Volume<std::uint8_t>& labels, const std::array<bool, 256>& host,
                            const Volume<float>* grey, double dark_below, double valley_floor, double contrast,
                            const std::array<std::vector<double>, 3>& valley_kernels, const CrackDetectionOptions& o) {
  if (!grey || !(o.cut_min_beyond > 0) || !(o.cut_min_valley > 0)) return false;
  if (static_cast<index_t>(fragment.size()) < std::max(o.min_voxels, o.cut_min_voxels)) return false;
  const Dims d = labels.dims();
  const PrincipalAxes plane = principal_axes(fragment, d, labels.spacing_um);
  if (sheet_aspect(plane) < o.min_aspect) return false;
  if (!one_dark_sheet(fragment, plane, void_mask, grey, valley_kernels, valley_floor, dark_below, o)) return false;
  const double beyond = valley_beyond_void(fragment, plane, labels, void_mask, host, *grey, contrast);
  return beyond >= o.cut_min_beyond;
}

// Fragments of one crack cut out of several rejected groups (step 4b): a holey disc among the
// compaction pores of a less pressed compact is merged into several pore groups, and its part of
// each (a few dozen to 150 voxels) is too small to be a cut crack alone. Fragments whose closest
// voxels lie within bridge_max_um are joined when their planes agree (normals within 20°, the
// smaller's centroid within 1.5 voxels of the larger's plane) and the path between those voxels
// crosses no intact host (crosses_no_intact_host), where host beside a solid brighter than the
// host's grey (host_level) counts as that solid: a disc that runs along an AM particle's surface
// is lifted by the particle's blur to SE grey or above over its whole stretch there (128³ seed 14
// at 250 MPa: 9 SE-labelled voxels between the disc's two halves, mean grey 23 800 against a
// host level of 22 800), and its halves are cut planes that passed the sandwiched and darkness
// tests already; for whole groups (bridge_groups, pores among them) the rim is not excused. A
// joined set of two or more is a crack when it passes the tests of a cut crack as one (size, sandwiched share and
// aspect on its own plane, one dark sheet, the valley judged by its depth alone). The first `anchors` entries of
// `fragments` are cracks accepted already (a piece of the disc that passed step 4 alone): a set holding one of them and
// passing the same tests hands its fragments to that crack. With bridge_accepted, anchors are joined to each other by
// the same tests (the set's further anchors hand their voxels to the first: two halves of one disc, each a crack
// alone, split into two groups by a particle or by the PSF); without it they are not. Union–find over the pairs in a
// fixed order: deterministic.
struct JoinedFragments {
  std::size_t anchor = SIZE_MAX;  // the accepted crack the fragments join, or none: a new crack
  std::vector<index_t> voxels;    // the fragments' voxels (and those of further accepted cracks joined)
};
std::vector<JoinedFragments> bridge_fragments(const std::vector<std::vector<index_t>>& fragments, std::size_t anchors,
                                              const Volume<std::uint8_t>& void_mask, const Volume<std::uint8_t>& labels,
                                              const std::array<bool, 256>& host, double max_aperture_um,
                                              const Volume<float>* grey, double dark_below, double host_level,
                                              double valley_floor, double contrast, const CrackDetectionOptions& o) {
  std::vector<JoinedFragments> found;
  if (!(o.bridge_max_um > 0) || fragments.size() <= (o.bridge_accepted ? std::size_t{1} : anchors)) return found;
  const Dims d = labels.dims();
  const Vec3 h = labels.spacing_um;
  const double h_max = std::max({h[0], h[1], h[2]});
  const double reach = o.bridge_max_um;
  struct Fragment {
    PrincipalAxes axes;
    index_t lo[3], hi[3];
  };
  std::vector<Fragment> frag(fragments.size());
  for (std::size_t f = 0; f < fragments.size(); ++f) {
    frag[f].axes = principal_axes(fragments[f], d, h);
    for (int a = 0; a < 3; ++a) frag[f].lo[a] = d[a], frag[f].hi[a] = 0;
    for (index_t i : fragments[f]) {
      const index_t q[3] = {i % d.x, (i / d.x) % d.y, i / (d.x * d.y)};
      for (int a = 0; a < 3; ++a)
        frag[f].lo[a] = std::min(frag[f].lo[a], q[a]), frag[f].hi[a] = std::max(frag[f].hi[a], q[a]);
    }
  }
  std::vector<std::pair<std::size_t, std::size_t>> pairs;
  for (std::size_t a = 0; a < frag.size(); ++a)
    for (std::size_t b = o.bridge_accepted ? a + 1 : std::max(a + 1, anchors); b < frag.size(); ++b) {
      bool near = true;
      for (int ax = 0; ax < 3 && near; ++ax)
        near =
            static_cast<double>(std::max(frag[a].lo[ax] - frag[b].hi[ax], frag[b].lo[ax] - frag[a].hi[ax])) * h[ax] <=
            reach;
      if (near) pairs.emplace_back(a, b);
    }
  std::vector<std::uint8_t> join(pairs.size(), 0);
  tbb::parallel_for(std::size_t{0}, pairs.size(), [&](std::size_t k) {
    const Fragment &fa = frag[pairs[k].first], &fb = frag[pairs[k].second];
    const Vec3 &n = fa.axes.axis[2], &m = fb.axes.axis[2];
    // The larger fragment's plane holds the smaller's centroid (a plane fitted to a piece a few
    // voxels across does not reach a piece 10 voxels away).
    const bool a_larger = fragments[pairs[k].first].size() >= fragments[pairs[k].second].size();
    if (std::abs(n[0] * m[0] + n[1] * m[1] + n[2] * m[2]) < std::cos(20 * M_PI / 180) ||
        plane_offset((a_larger ? fa : fb).axes, (a_larger ? fb : fa).axes.centroid_um) > 1.5 * h_max)
      return;
    const VoxelPair closest =
        closest_voxel_pair(fragments[pairs[k].first], fa.lo, fa.hi, fragments[pairs[k].second], reach, d, h);
    join[k] = std::sqrt(closest.squared_um2) <= reach &&
              crosses_no_intact_host(closest.outer, closest.inner, labels, void_mask, host, grey, dark_below,
                                     o.join_gap_vox, host_level);
  });
  std::vector<std::size_t> parent(frag.size());
  for (std::size_t f = 0; f < parent.size(); ++f) parent[f] = f;
  join_accepted_pairs(parent, pairs, join);
  std::vector<std::vector<std::size_t>> sets(frag.size());
  for (std::size_t f = 0; f < frag.size(); ++f) sets[root_of(parent, f)].push_back(f);
  std::array<std::vector<double>, 3> valley_kernels;  // σ = one finest voxel, as cut_sandwiched_planes
  if (grey && o.cut_min_valley > 0) {
    const double h_min = std::min({h[0], h[1], h[2]});
    for (std::size_t a = 0; a < 3; ++a) valley_kernels[a] = gaussian_kernel(h_min / h[a]);
  }
  const index_t least = std::max(o.min_voxels, o.cut_min_voxels);
  for (const auto& set : sets) {
    if (set.size() == 1 && set[0] >= anchors) {  // a fragment no other joined
      if (lone_fragment_is_crack(fragments[set[0]], void_mask, labels, host, grey, dark_below, valley_floor, contrast,
                                 valley_kernels, o)) {
        JoinedFragments j;
        j.voxels = fragments[set[0]];
        std::sort(j.voxels.begin(), j.voxels.end());
        found.push_back(std::move(j));
      }
      continue;
    }
    if (set.size() < 2 || (!o.bridge_accepted && set[1] < anchors)) continue;  // alone, or two accepted cracks
    std::vector<index_t> crack;
    for (std::size_t f : set) crack.insert(crack.end(), fragments[f].begin(), fragments[f].end());
    if (static_cast<index_t>(crack.size()) < least) continue;
    const PrincipalAxes plane = principal_axes(crack, d, h);
    if (sheet_aspect(plane) < std::max(o.min_aspect, o.cut_min_aspect)) {
      // Short of the cut aspect, a set of fragments alone is judged as one lone fragment is: the
      // joining is more evidence of one sheet, not less.
      if (o.joined_judged_as_lone && set[0] >= anchors &&
          lone_fragment_is_crack(crack, void_mask, labels, host, grey, dark_below, valley_floor, contrast,
                                 valley_kernels, o)) {
        JoinedFragments j;
        std::sort(crack.begin(), crack.end());
        j.voxels = std::move(crack);
        found.push_back(std::move(j));
      }
      continue;
    }
    std::size_t walled = 0;
    const Sandwich walls(plane.axis[2], void_mask, labels, host, max_aperture_um);
    for (index_t i : crack) walled += walls(i);
    if (static_cast<double>(walled) < o.cut_min_sandwiched * static_cast<double>(crack.size())) continue;
    // One dark sheet, but without the valley's ratio to the in-plane curvature: the fragments lie
    // in pore groups, and the pores beside them curve the grey along the joined plane (measured
    // 1.5 × for a disc's three fragments, 1.3 × for a false pair that is no valley at all).
    CrackDetectionOptions joined = o;
    joined.cut_valley_ratio = 0;
    if (!one_dark_sheet(crack, plane, void_mask, grey, valley_kernels, valley_floor, dark_below, joined)) continue;
    JoinedFragments j;
    if (set[0] < anchors) {
      j.anchor = set[0];
      crack.erase(crack.begin(), crack.begin() + static_cast<std::ptrdiff_t>(fragments[set[0]].size()));
    }
    std::sort(crack.begin(), crack.end());
    j.voxels = std::move(crack);
    found.push_back(std::move(j));
  }
  return found;
}

// Facets (facets.h) inside a host brighter than another solid, as cracks of their own where no
// crack was detected yet.
void add_facets(const Volume<std::uint8_t>& labels, const Volume<float>& grey, const std::array<bool, 256>& host,
                const std::array<bool, 256>& pore, const CrackDetectionOptions& o, CrackDetection& out) {
  std::array<bool, 256> other{};  // the solids that are neither host nor void
  for (std::size_t l = 0; l < 256; ++l) other[l] = !host[l] && !pore[l];
  const std::array<double, 2> levels = grey_medians(labels, grey, host, other);
  const double host_level = levels[0], darker_level = levels[1];
  if (!(darker_level < host_level)) return;  // no darker solid: a thin opening reads as void or host
  const Facets facets = detect_facets(labels, grey, host, host_level, darker_level, o.facets, out.ids);
  out.facet_voxels = facets.candidates;
  for (const auto& facet : facets.voxels) {
    ++out.count, ++out.facet_cracks;
    for (index_t i : facet) out.ids[i] = out.count;
  }
}

// Host voxels farther than `reach_um` from every non-host voxel: a film of another solid between
// host grains is dark too, and beside labelled void a sheet response only widens what the labels
// hold.
Volume<std::uint8_t> host_clear_of_others(const Volume<std::uint8_t>& labels, const std::array<bool, 256>& host,
                                          double reach_um) {
  Volume<std::uint8_t> not_host = labels.like<std::uint8_t>(labels.dims());
  for_each_voxel(labels.size(), [&](index_t i) { not_host[i] = !host[labels[i]]; });
  Volume<std::uint8_t> clear = dilate(not_host, reach_um);
  for_each_voxel(labels.size(), [&](index_t i) { clear[i] = !clear[i]; });
  return clear;
}

}  // namespace

CrackDetection detect_cracks(const Volume<std::uint8_t>& labels, const Volume<float>* grey,
                             const CrackDetectionOptions& o) {
  if (o.host_labels.empty()) throw InputError("crack detection: no host phase given");
  if (o.void_labels.empty()) throw InputError("crack detection: no void (pore) phase given");
  if (grey && !(grey->dims() == labels.dims()))
    throw InputError("crack detection: grey image " + to_string(grey->dims()) + " and labels " +
                     to_string(labels.dims()) + " differ in size; expected the same dims");
  if (!(o.min_aspect > 0)) throw InputError("crack detection: min_aspect must be positive");
  const std::array<bool, 256> host = label_set(o.host_labels), pore = label_set(o.void_labels);
  for (int l : o.host_labels)
    if (pore[static_cast<std::size_t>(l)])
      throw InputError("crack detection: label " + std::to_string(l) + " is both host and void");

  const Dims d = labels.dims();
  const Vec3 h = labels.spacing_um;
  const double h_max = std::max({h[0], h[1], h[2]});
  CrackDetection out;
  out.max_aperture_um = o.max_aperture_um > 0 ? o.max_aperture_um : 4 * h_max;
  out.closing_radius_um = o.closing_radius_um > 0 ? o.closing_radius_um : out.max_aperture_um / 2 + h_max;

  // 1. Void, plus host voxels with a strong grey sheet response (found first, in the mask of where
  //    the response is read, which then becomes the void mask: no third byte volume beside it).
  Volume<std::uint8_t> void_mask;
  double dark_below = 0;    // a cut crack's mean grey lies below this (host − cut_min_dip × contrast)
  double host_level = 0;    // the host's grey level
  double valley_floor = 0;  // and its mean curvature across exceeds this (grey / µm²)
  if (grey) {
    SheetnessOptions so = o.sheetness;
    if (!(so.contrast > 0) || !std::isfinite(so.host_level)) {
      const GreyLevels levels = grey_levels(labels, *grey, host, pore);
      if (!(so.contrast > 0)) so.contrast = levels.host - levels.void_;
      if (!(so.contrast > 0))
        throw InputError("crack detection: the grey contrast between host (median " + std::to_string(levels.host) +
                         ") and void (median " + std::to_string(levels.void_) +
                         ") is not positive or not known; give the sheet contrast explicitly");
      if (!std::isfinite(so.host_level)) so.host_level = levels.host;
    }
    out.contrast = so.contrast;
    dark_below = so.host_level - o.cut_min_dip * so.contrast;
    host_level = so.host_level;
    const double h_min = std::min({h[0], h[1], h[2]});
    valley_floor = o.cut_min_valley * so.contrast / (h_min * h_min);
    // The response is read only at host voxels clear of the rest, so it is computed only there.
    Volume<std::uint8_t> weak = host_clear_of_others(labels, host, 1.75 * h_max);  // 26-neighbours and beyond
    // Hysteresis: host voxels with a response ≥ sheet_threshold / 2 that are 26-connected to
    // one ≥ sheet_threshold; noise seldom reaches the high level, a crack's rim seldom the low.
    // Only the levels are kept (1 weak, 2 strong), not the response's float volume.
    dark_sheetness_levels(*grey, so, weak, o.sheet_threshold / 2, o.sheet_threshold);
    {
      const Clusters weak_parts = label_clusters(weak, 26);
      std::vector<std::uint8_t> has_strong(weak_parts.count + 1, 0);
      for_each_voxel(labels.size(), [&](index_t i) {
        if (weak[i] == 2)
          std::atomic_ref<std::uint8_t>(has_strong[weak_parts.ids[i]]).store(1, std::memory_order_relaxed);
      });
      for_each_voxel(labels.size(), [&](index_t i) { weak[i] = has_strong[weak_parts.ids[i]]; });
    }
    void_mask = std::move(weak);
  } else {
    void_mask = labels.like<std::uint8_t>(d);
  }
  out.void_voxels = count_voxels(labels.size(), [&](index_t i) { return pore[labels[i]]; });
  out.sheet_voxels = count_voxels(labels.size(), [&](index_t i) {
    if (!pore[labels[i]]) return void_mask[i] != 0;
    void_mask[i] = 1;
    return false;
  });

  // 2. Inside the closed host (as labelled, sheet voxels included, so that a crack found
  //    only in the grey image does not split its own host).
  Volume<std::uint8_t> labelled_host = labels.like<std::uint8_t>(d);
  for_each_voxel(labels.size(), [&](index_t i) { labelled_host[i] = host[labels[i]]; });
  Volume<std::uint8_t> closed = erode(dilate(labelled_host, out.closing_radius_um), out.closing_radius_um);
  labelled_host = {};  // released: only the closing needed it

  // 3. Thin, by the local thickness of the whole void: the enclosed void first, in the closed
  //    host's own buffer, so that the thickness is not computed beside a third byte volume.
  Volume<std::uint8_t> thin = std::move(closed);
  out.enclosed_voxels = count_voxels(labels.size(), [&](index_t i) { return thin[i] = thin[i] && void_mask[i]; });
  {  // the thickness is dropped before the components are labelled
    const Volume<float> thickness = local_thickness(void_mask);
    out.thin_voxels = count_voxels(labels.size(), [&](index_t i) {
      // A small tolerance: local thickness is a sum of float distances.
      return thin[i] = thin[i] && thickness[i] <= out.max_aperture_um * (1 + 1e-6);
    });
  }

  // 4. Sheet-like components become cracks; coplanar pieces of one holey sheet are judged as one.
  Clusters comps = label_clusters(thin, 26);
  thin = {};  // released: the components hold it from here on
  std::vector<std::vector<index_t>> members(comps.count + 1);
  for_each_labelled_voxel(comps.ids, [&](std::uint32_t id, index_t i) { members[id].push_back(i); });
  std::vector<std::uint32_t> group = coplanar_groups(comps, members, h, o.join_gap_vox);
  comps.ids = {};  // released: the members hold the components from here on (bridge_groups reads the count)
  bridge_groups(comps, members, group, labels, void_mask, host, grey, dark_below, o);
  std::vector<std::vector<std::uint32_t>> parts_of(comps.count + 1);
  for (std::uint32_t c = 1; c <= comps.count; ++c) parts_of[group[c]].push_back(c);
  // Each group is judged on its own (in parallel); ids are then handed out in group order.
  struct GroupVerdict {
    enum Kind : std::uint8_t { none, rejected_small, rejected_shape, whole, split } kind = none;
    std::vector<std::vector<index_t>> pieces;     // cut out of a rejected group, or its split planes
    std::vector<std::vector<index_t>> fragments;  // of a rejected group with no cut crack: too small alone
  };
  std::vector<GroupVerdict> verdict(comps.count + 1);
  tbb::parallel_for(
      tbb::blocked_range<std::uint32_t>(1, comps.count + 1, 1), [&](const tbb::blocked_range<std::uint32_t>& range) {
        for (std::uint32_t root = range.begin(); root != range.end(); ++root) {
          if (parts_of[root].empty()) continue;  // not a group's first component
          GroupVerdict& g = verdict[root];
          std::vector<index_t> v;
          for (std::uint32_t c : parts_of[root]) v.insert(v.end(), members[c].begin(), members[c].end());
          // Found mostly in the grey image: noise makes small sheets, so ask for more support.
          index_t from_grey = 0;
          for (index_t i : v) from_grey += !pore[labels[i]];
          const index_t least = 2 * from_grey > static_cast<index_t>(v.size()) ? o.min_grey_voxels : o.min_voxels;
          const bool small = static_cast<index_t>(v.size()) < least;
          if (small || sheet_aspect(principal_axes(v, d, h)) < o.min_aspect) {
            g.kind = small ? GroupVerdict::rejected_small : GroupVerdict::rejected_shape;
            // A crack merged with pores or debris: cut out the planes walled by host on both sides.
            if (o.cut_max_planes > 0) {
              CutPlanes cut = cut_sandwiched_planes(v, void_mask, labels, host, out.max_aperture_um, grey, dark_below,
                                                    valley_floor, o);
              g.pieces = std::move(cut.cracks);
              g.fragments = std::move(cut.fragments);
            }
          } else if (!o.split_touching) {
            g.kind = GroupVerdict::whole;
          } else {
            g.kind = GroupVerdict::split;
            g.pieces = split_planes(v, d, h, o);
            if (o.planar_sheets && o.cut_max_planes > 0) {
              // A piece thicker across its plane than the widest aperture is no planar crack (a
              // compaction pore curved along the grains that bound it): cut it as a rejected group.
              std::vector<std::vector<index_t>> planar;
              for (auto& piece : g.pieces) {
                if (slab_thickness_um(principal_axes(piece, d, h)) <= out.max_aperture_um * (1 + 1e-6)) {
                  planar.push_back(std::move(piece));
                  continue;
                }
                CutPlanes cut = cut_sandwiched_planes(piece, void_mask, labels, host, out.max_aperture_um, grey,
                                                      dark_below, valley_floor, o);
                for (auto& c : cut.cracks) planar.push_back(std::move(c));
                for (auto& f : cut.fragments) g.fragments.push_back(std::move(f));
              }
              g.pieces = std::move(planar);
            }
          }
        }
      });
  // The crack ids are allocated only now, after every full-volume buffer of steps 1–4 but the
  // void mask is gone: the stage's high-water mark is what is held together.
  out.ids = labels.like<std::uint32_t>(d);
  std::vector<std::uint32_t> new_id(comps.count + 1, 0);
  for (std::uint32_t root = 1; root <= comps.count; ++root) {
    GroupVerdict& g = verdict[root];
    if (g.kind == GroupVerdict::none) continue;
    if (g.kind == GroupVerdict::rejected_small || g.kind == GroupVerdict::rejected_shape) {
      ++(g.kind == GroupVerdict::rejected_small ? out.rejected_small : out.rejected_shape);
      for (const auto& piece : g.pieces) {
        ++out.count, ++out.cut_cracks;
        for (index_t i : piece) out.ids[i] = out.count;
      }
    } else if (g.kind == GroupVerdict::whole) {
      ++out.count;
      for (std::uint32_t c : parts_of[root]) new_id[c] = out.count;
    } else {
      for (const auto& piece : g.pieces) {
        ++out.count;
        for (index_t i : piece) out.ids[i] = out.count;
      }
    }
    g.pieces = {};
  }
  if (!o.split_touching) {
    for (std::uint32_t c = 1; c <= comps.count; ++c)
      if (new_id[c])
        for (index_t i : members[c]) out.ids[i] = new_id[c];
  }
  // Fragments of rejected groups (in group order) joined across the groups, and to the cracks
  // accepted so far (ids 1..count, the first entries): cut cracks, or parts of those cracks.
  std::vector<std::vector<index_t>> fragments(out.count);
  for_each_labelled_voxel(out.ids, [&](std::uint32_t id, index_t i) { fragments[id - 1].push_back(i); });
  const std::size_t anchors = fragments.size();
  for (std::uint32_t root = 1; root <= comps.count; ++root)
    for (auto& f : verdict[root].fragments) fragments.push_back(std::move(f));
  for (const auto& joined : bridge_fragments(fragments, anchors, void_mask, labels, host, out.max_aperture_um, grey,
                                             dark_below, host_level, valley_floor, out.contrast, o)) {
    std::uint32_t id = static_cast<std::uint32_t>(joined.anchor + 1);
    if (joined.anchor == SIZE_MAX) id = ++out.count, ++out.cut_cracks;
    for (index_t i : joined.voxels) out.ids[i] = id;
  }
  // Released before the facets: they read only the labels, the grey and the ids, and their own
  // full-volume buffers set the stage's high-water mark.
  void_mask = {};
  fragments = {};
  verdict = {};
  members = {};
  if (grey && o.find_facets) add_facets(labels, *grey, host, pore, o, out);
  out.count = number_in_raster_order(out.ids, out.count);  // ids in raster order of each crack's first voxel
  return out;
}

}  // namespace vp
