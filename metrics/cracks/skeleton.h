// 3-D topology-preserving thinning (Lee, Kashyap & Chu 1994) and the topology
// numbers used to check it.
//
// The algorithm is the curve-skeleton variant used by scikit-image's skeletonize_3d
// and ITK's remote BinaryThinningImageFilter3D: object voxels are 26-connected,
// background 6-connected. Each pass runs six sub-iterations, one per border direction
// (-x, +x, -y, +y, -z, +z); in each, the border voxels of that direction that are not
// line end points (exactly one object 26-neighbour), are Euler-invariant and are
// simple points are collected in raster order, then deleted one by one after
// re-checking simplicity. Passes repeat until none deletes a voxel.
//
// What survives: a 1-voxel-thin set of curves with the topology of the input
// (components, tunnels, cavities). A solid box or a plate thins to a line (or a
// point when the shape is a cube); LKC's "medial surface" variant is not provided.
// Deterministic: the same input gives the same skeleton for any thread count.
#pragma once

#include <cstdint>

#include "core/volume.h"

namespace vp {

// mask: nonzero = object. Returns a 1/0 mask with the input's spacing, origin and provenance.
Volume<std::uint8_t> skeletonize(const Volume<std::uint8_t>& mask);

// The Euler characteristic of a mask: euler_characteristic(mask, 26) in metrics/connectivity.h.

// True when deleting the voxel at (x, y, z) of the 3×3×3 neighbourhood `neighbours`
// (bit i set = object at offset (i%3-1, i/3%3-1, i/9-1); bit 13 is the voxel itself)
// changes neither the number of object components, nor background components, nor
// tunnels: exactly one 26-component of object voxels in N26, and exactly one
// 6-component of background voxels in N18 that touches the voxel's 6-neighbours
// (Bertrand & Malandain 1994).
bool is_simple_point(std::uint32_t neighbours);

// Change of the Euler characteristic when the centre voxel of `neighbours` is removed
// (0 = Euler-invariant), from the 8 octants around it.
int euler_change_on_removal(std::uint32_t neighbours);

}  // namespace vp
