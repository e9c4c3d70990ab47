#include "metrics/cracks/short_circuit.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include <tbb/parallel_sort.h>

#include "core/error.h"
#include "metrics/distance_transform.h"
#include "metrics/face_connectivity.h"

namespace vp {

ShortCircuitRisk short_circuit_risk(const Volume<std::uint8_t>& network, const ShortCircuitOptions& o) {
  FaceConnectivityOptions fo;
  fo.axis = o.axis;
  fo.connectivity = o.connectivity;
  const FaceReach reach = face_reachability(network, fo);  // validates axis, connectivity, dims
  ShortCircuitRisk risk;
  risk.axis = o.axis;
  risk.percolates = reach.percolates();
  risk.percolating_voxels = reach.percolating;
  if (!risk.percolates) return risk;

  // Only the percolating voxels can lie on a face-to-face path.
  const Dims d = network.dims();
  Volume<std::uint8_t> through = network.like<std::uint8_t>(d);
  std::vector<index_t> voxels;
  voxels.reserve(static_cast<std::size_t>(reach.percolating));
  for (index_t i = 0; i < network.size(); ++i)
    if (FaceReach::is_percolating(reach.flags[i])) {
      through[i] = 1;
      voxels.push_back(i);
    }
  // Radii against the whole network (a pore beside the path widens it).
  const Volume<float> r2 = squared_distance_to_boundary(network);
  tbb::parallel_sort(voxels.begin(), voxels.end(),
                     [&](index_t a, index_t b) { return r2[a] != r2[b] ? r2[a] > r2[b] : a < b; });

  // Union-find over voxels, plus two virtual nodes for the faces.
  const index_t n = network.size();
  const index_t low = n, high = n + 1;
  std::vector<index_t> parent(static_cast<std::size_t>(n + 2), -1);  // -1 = not added yet
  parent[low] = low;
  parent[high] = high;
  auto find = [&](index_t a) {
    while (parent[a] != a) a = parent[a] = parent[parent[a]];
    return a;
  };
  auto unite = [&](index_t a, index_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  };
  const int axis = o.axis;
  const index_t last = d[axis] - 1;
  for (index_t v : voxels) {
    parent[v] = v;
    const index_t c[3] = {v % d.x, v / d.x % d.y, v / (d.x * d.y)};
    if (c[axis] == 0) unite(v, low);
    if (c[axis] == last) unite(v, high);
    for (index_t dz = -1; dz <= 1; ++dz)
      for (index_t dy = -1; dy <= 1; ++dy)
        for (index_t dx = -1; dx <= 1; ++dx) {
          const int l1 = static_cast<int>(std::abs(dx) + std::abs(dy) + std::abs(dz));
          if (l1 == 0 || (o.connectivity == 6 && l1 > 1) || (o.connectivity == 18 && l1 > 2)) continue;
          const index_t x = c[0] + dx, y = c[1] + dy, z = c[2] + dz;
          if (x < 0 || y < 0 || z < 0 || x >= d.x || y >= d.y || z >= d.z) continue;
          const index_t w = network.index(x, y, z);
          if (through[w] && parent[w] >= 0) unite(v, w);
        }
    if (find(low) == find(high)) {
      risk.bottleneck_diameter_um = 2.0 * std::sqrt(static_cast<double>(r2[v]));
      break;
    }
  }
  return risk;
}

}  // namespace vp
