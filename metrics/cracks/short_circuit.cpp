#include "metrics/cracks/short_circuit.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include <tbb/parallel_sort.h>

#include "core/error.h"
#include "metrics/connectivity.h"
#include "metrics/distance_transform.h"

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

// Per component: touches the low face (bit 1) and/or the high face (bit 2) of the axis.
std::vector<std::uint8_t> faces_touched(const Clusters& components, int axis) {
  const Volume<std::uint32_t>& ids = components.ids;
  const Dims d = ids.dims();
  std::vector<std::uint8_t> touched(components.count + 1, 0);
  const index_t n[3] = {d.x, d.y, d.z};
  const int u = axis == 0 ? 1 : 0, v = axis == 2 ? 1 : 2;  // the two other axes
  for (index_t b = 0; b < n[v]; ++b)
    for (index_t a = 0; a < n[u]; ++a) {
      index_t p[3];
      p[u] = a;
      p[v] = b;
      p[axis] = 0;
      touched[ids(p[0], p[1], p[2])] |= 1;
      p[axis] = n[axis] - 1;
      touched[ids(p[0], p[1], p[2])] |= 2;
    }
  touched[0] = 0;  // not network
  return touched;
}

// The widest face-to-face path along the axis: add percolating voxels in decreasing radius
// until the two faces join; the voxel that joins them sets the bottleneck.
template <class Link>
void widest_path(const Volume<std::uint8_t>& network, const Clusters& components,
                 const std::vector<std::uint8_t>& touched, const std::vector<Ranked>& ranked, int connectivity,
                 Forest<Link>& forest, ShortCircuitRisk& risk) {
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
    if (touched[components.ids[v]] != 3) continue;  // only these lie on a face-to-face path
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
std::vector<ShortCircuitRisk> risks_with(const Volume<std::uint8_t>& network, const Clusters& components,
                                         const std::vector<int>& axes, int connectivity) {
  std::vector<ShortCircuitRisk> risks;
  std::vector<Ranked> ranked;
  std::optional<Forest<Link>> forest;
  for (int axis : axes) {
    // A voxel is connected to a face iff its component touches that face.
    const std::vector<std::uint8_t> touched = faces_touched(components, axis);
    ShortCircuitRisk& r = risks.emplace_back();
    r.axis = axis;
    for (std::uint32_t c = 1; c <= components.count; ++c)
      if (touched[c] == 3) r.percolating_voxels += components.voxels[c];
    r.percolates = r.percolating_voxels > 0;
    if (!r.percolates) continue;
    if (!forest) {  // the first axis that percolates: rank once, then the links
      ranked = rank_by_radius(network);
      forest.emplace(network.size());
    }
    widest_path(network, components, touched, ranked, connectivity, *forest, r);
  }
  return risks;
}

}  // namespace

std::vector<ShortCircuitRisk> short_circuit_risks(const Volume<std::uint8_t>& network, const Clusters& components,
                                                  const std::vector<int>& axes, int connectivity) {
  if (!(components.ids.dims() == network.dims()))
    throw InputError("short circuit: components " + to_string(components.ids.dims()) + " and network " +
                     to_string(network.dims()) + " differ in size");
  if (connectivity != 6 && connectivity != 18 && connectivity != 26)
    throw InputError("short circuit: connectivity " + std::to_string(connectivity) + " is not 6, 18 or 26");
  for (int axis : axes)
    if (axis < 0 || axis > 2) throw InputError("short circuit: axis " + std::to_string(axis) + " is not 0, 1 or 2");
  // 32-bit union-find links while every voxel and the two face nodes fit below the `none` mark.
  if (network.size() + 2 < static_cast<index_t>(std::numeric_limits<std::uint32_t>::max()))
    return risks_with<std::uint32_t>(network, components, axes, connectivity);
  return risks_with<std::uint64_t>(network, components, axes, connectivity);
}

std::vector<ShortCircuitRisk> short_circuit_risks(const Volume<std::uint8_t>& network, const std::vector<int>& axes,
                                                  int connectivity) {
  return short_circuit_risks(network, label_clusters(network, connectivity), axes, connectivity);
}

ShortCircuitRisk short_circuit_risk(const Volume<std::uint8_t>& network, const ShortCircuitOptions& o) {
  return short_circuit_risks(network, {o.axis}, o.connectivity).front();
}

}  // namespace vp
