// Clusters of a phase, their percolation across the image, and topology (Euler characteristic,
// connectivity density).
//
// Clusters: connected-component labelling under 6- (faces), 18- (+ edges) or 26- (+ corners)
// connectivity, union-find over z-slabs in parallel (union by smaller index, so every cluster's
// root is its first voxel in raster order and the ids 1..n follow that order whatever the
// thread count), the links then numbered in parallel over the same slabs.
//
// Euler characteristic χ = V − E + F − C of a cubical complex (exact, by counting cells):
//   6-connectivity:  vertices = phase voxels, edges = face-adjacent pairs, faces = 2×2 squares,
//                    cubes = 2×2×2 blocks entirely in the phase (the complex on voxel centres);
//   26-connectivity: the union of the closed voxel cubes (their corners, edges, faces, cubes).
//   18-connectivity has no such complex; it is reported with the 26 complex (and its tunnels β1
//   with the 26 components), while cluster counts stay 18-connected.
// The outside of the image counts as not-phase. χ = β0 − β1 + β2 (components − tunnels +
// cavities); connectivity density = β1 / image volume (µm⁻³) with β2 = cavities = clusters of
// the complement (complementary connectivity: 6 ↔ 26, 18 → 6) that do not touch the border.
#pragma once

#include <cstdint>
#include <vector>

#include "core/volume.h"

namespace vp {

struct Clusters {
  Volume<std::uint32_t> ids;  // 0 outside the mask, 1..count in raster order of first voxel
  std::uint32_t count = 0;
  std::vector<std::int64_t> voxels;  // voxels[id] (index 0 unused)
};

// mask: nonzero = in the phase. connectivity 6, 18 or 26 (InputError otherwise).
Clusters label_clusters(const Volume<std::uint8_t>& mask, int connectivity = 6);

// The neighbour offsets of a connectivity: 6 (faces: ∓x, ∓y, ∓z), 18 (+ edges) or 26 (+ corners;
// 18 and 26 in raster order of the neighbour); InputError for anything else. Fixed order, since
// callers (the watershed) break ties in it.
struct Offset {
  int dx, dy, dz;
  int operator[](int axis) const { return axis == 0 ? dx : axis == 1 ? dy : dz; }
};
const std::vector<Offset>& neighbour_offsets(int connectivity);

// χ of the mask for connectivity 6 or 26 (18 → 26, see above).
std::int64_t euler_characteristic(const Volume<std::uint8_t>& mask, int connectivity = 6);
// The part of χ counted at planes [z_begin, z_end) of `mask`, additive over disjoint ranges (for
// z-slabs held with one plane of their neighbours on either side): under 6, the cells whose lowest
// voxel lies there; under 18/26, the cells at the lattice planes of those voxels' lower corners,
// plus the plane above z_end − 1 when `top` (the top of the whole volume).
std::int64_t euler_characteristic_planes(const Volume<std::uint8_t>& mask, int connectivity, index_t z_begin,
                                         index_t z_end, bool top);

struct Topology {
  std::int64_t components = 0;              // β0
  std::int64_t cavities = 0;                // β2
  std::int64_t euler = 0;                   // χ
  std::int64_t tunnels = 0;                 // β1 = β0 + β2 − χ
  double connectivity_density_per_um3 = 0;  // β1 / image volume
};
Topology topology(const Volume<std::uint8_t>& mask, int connectivity = 6);

// Percolation of one phase along one axis (fractions of the phase's voxels), from
// face_reachability (metrics/face_connectivity.h).
struct Percolation {
  int axis = 2;
  std::int64_t phase_voxels = 0;
  double percolating_fraction = 0;  // connected to both faces of the axis
  double dead_end_fraction = 0;     // connected to exactly one face
  double isolated_fraction = 0;     // connected to neither
};
Percolation percolation(const Volume<std::uint8_t>& mask, int axis, int connectivity = 6);

}  // namespace vp
