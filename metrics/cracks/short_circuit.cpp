#include "metrics/cracks/short_circuit.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include <tbb/parallel_sort.h>

#include "core/error.h"
#include "metrics/distance_transform.h"
#include "metrics/face_connectivity.h"

namespace vp {

namespace {

// A network voxel and its squared radius. The radius is kept as the bits of the float: for
// non-negative floats their order is the order of the values, so sorting is integer compares.
struct Ranked {
  std::uint32_t r2_bits;
  index_t voxel;
};

// Network voxels from the widest to the narrowest (ties in raster order): the order in which
// the union-find adds them. One distance transform and one sort serve every axis.
std::vector<Ranked> rank_by_radius(const Volume<std::uint8_t>& network) {
  // Radii against the whole network (a pore beside the path widens it).
  const Volume<float> r2 = squared_distance_to_boundary(network);
  std::vector<Ranked> ranked;
  std::size_t count = 0;
  for (index_t i = 0; i < network.size(); ++i) count += network[i] != 0;
  ranked.reserve(count);
  for (index_t i = 0; i < network.size(); ++i)
    if (network[i]) ranked.push_back({std::bit_cast<std::uint32_t>(r2[i]), i});
  tbb::parallel_sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    return a.r2_bits != b.r2_bits ? a.r2_bits > b.r2_bits : a.voxel < b.voxel;
  });
  return ranked;
}

// Union-find parents, one per voxel plus the two faces; `none` = not added yet. 32-bit links
// when the volume allows (half the memory of index_t), reset between axes by the caller.
template <class Link>
struct Forest {
  static constexpr Link none = std::numeric_limits<Link>::max();
  std::vector<Link> parent;
  explicit Forest(index_t n) : parent(static_cast<std::size_t>(n + 2), none) {}
  Link find(Link a) {
    while (parent[a] != a) a = parent[a] = parent[parent[a]];
    return a;
  }
  void unite(Link a, Link b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
};

// The widest face-to-face path along the axis: add percolating voxels in decreasing radius
// until the two faces join; the voxel that joins them sets the bottleneck.
template <class Link>
void widest_path(const Volume<std::uint8_t>& network, const FaceReach& reach, const std::vector<Ranked>& ranked,
                 int connectivity, Forest<Link>& forest, ShortCircuitRisk& risk) {
  const Dims d = network.dims();
  const index_t n = network.size();
  const Link low = static_cast<Link>(n), high = static_cast<Link>(n + 1);
  auto& parent = forest.parent;
  parent[low] = low;
  parent[high] = high;
  const int axis = risk.axis;
  const index_t last = d[axis] - 1;
  std::size_t added = 0;
  for (const Ranked& rv : ranked) {
    const index_t v = rv.voxel;
    if (!FaceReach::is_percolating(reach.flags[v])) continue;  // only these lie on a face-to-face path
    ++added;
    parent[v] = static_cast<Link>(v);
    const index_t c[3] = {v % d.x, v / d.x % d.y, v / (d.x * d.y)};
    if (c[axis] == 0) forest.unite(static_cast<Link>(v), low);
    if (c[axis] == last) forest.unite(static_cast<Link>(v), high);
    for (index_t dz = -1; dz <= 1; ++dz)
      for (index_t dy = -1; dy <= 1; ++dy)
        for (index_t dx = -1; dx <= 1; ++dx) {
          const int l1 = static_cast<int>(std::abs(dx) + std::abs(dy) + std::abs(dz));
          if (l1 == 0 || (connectivity == 6 && l1 > 1) || (connectivity == 18 && l1 > 2)) continue;
          const index_t x = c[0] + dx, y = c[1] + dy, z = c[2] + dz;
          if (x < 0 || y < 0 || z < 0 || x >= d.x || y >= d.y || z >= d.z) continue;
          const index_t w = network.index(x, y, z);
          if (parent[w] != Forest<Link>::none) forest.unite(static_cast<Link>(v), static_cast<Link>(w));
        }
    if (forest.find(low) == forest.find(high)) {
      risk.bottleneck_diameter_um = 2.0 * std::sqrt(static_cast<double>(std::bit_cast<float>(rv.r2_bits)));
      break;
    }
  }
  // Back to "not added" for the next axis: only the voxels added (and the faces) were touched.
  for (const Ranked& rv : ranked) {
    if (added == 0) break;
    if (parent[rv.voxel] == Forest<Link>::none) continue;
    parent[rv.voxel] = Forest<Link>::none;
    --added;
  }
  parent[low] = parent[high] = Forest<Link>::none;
}

template <class Link>
std::vector<ShortCircuitRisk> risks_with(const Volume<std::uint8_t>& network, const std::vector<int>& axes,
                                         int connectivity) {
  std::vector<ShortCircuitRisk> risks;
  std::vector<Ranked> ranked;
  std::optional<Forest<Link>> forest;
  for (int axis : axes) {
    FaceConnectivityOptions fo;
    fo.axis = axis;
    fo.connectivity = connectivity;
    const FaceReach reach = face_reachability(network, fo);  // validates axis, connectivity, dims
    ShortCircuitRisk& r = risks.emplace_back();
    r.axis = axis;
    r.percolates = reach.percolates();
    r.percolating_voxels = reach.percolating;
    if (!r.percolates) continue;
    if (!forest) {  // the first axis that percolates: rank once, then the links
      ranked = rank_by_radius(network);
      forest.emplace(network.size());
    }
    widest_path(network, reach, ranked, connectivity, *forest, r);
  }
  return risks;
}

}  // namespace

std::vector<ShortCircuitRisk> short_circuit_risks(const Volume<std::uint8_t>& network, const std::vector<int>& axes,
                                                  int connectivity) {
  // 32-bit union-find links while every voxel and the two face nodes fit below the `none` mark.
  if (network.size() + 2 < static_cast<index_t>(std::numeric_limits<std::uint32_t>::max()))
    return risks_with<std::uint32_t>(network, axes, connectivity);
  return risks_with<std::uint64_t>(network, axes, connectivity);
}

ShortCircuitRisk short_circuit_risk(const Volume<std::uint8_t>& network, const ShortCircuitOptions& o) {
  return short_circuit_risks(network, {o.axis}, o.connectivity).front();
}

}  // namespace vp
