// Geometric tortuosity: how much longer the shortest path inside a phase is than the straight
// line across the image.
//
// Geodesic distance d_in from the inlet face (all phase voxels of the first plane along the axis,
// distance 0) by Dijkstra on the voxel graph with exact Euclidean step lengths in µm (26 or 18
// or 6 neighbours). At each phase voxel of the outlet plane that is reached, the ratio
// d_in / L with L = (N − 1)·h, the distance between the inlet and outlet planes of voxel
// centres; geometric_tortuosity = the mean of those ratios. A straight channel gives exactly 1.
// Bias: paths are restricted to the 26 lattice directions, so a straight path at an angle that is
// not a lattice direction is overestimated: by up to 8.2 % within a lattice plane and up to 12.8 %
// in 3-D (worst near direction (1, 0.415, 0.318); 0 along lattice directions). With 6 neighbours
// the worst case is √3 − 1 = 73 %.
#pragma once

#include <cstdint>
#include <optional>

#include "core/volume.h"
#include "metrics/distribution.h"

namespace vp {

struct GeometricTortuosityOptions {
  int axis = 2;           // 0 = x, 1 = y, 2 = z
  int connectivity = 26;  // neighbours of the path graph: 6, 18 or 26
  bool map = false;       // also compute the per-voxel (d_in + d_out) / L map
};

struct GeometricTortuosity {
  int axis = 2;
  double straight_length_um = 0;     // L
  std::int64_t outlet_voxels = 0;    // phase voxels on the outlet plane
  std::int64_t outlet_reached = 0;   // of those, reached from the inlet
  double mean = 0;                   // mean ratio over reached outlet voxels; NaN when none
  Distribution ratios;               // their distribution
  std::optional<Volume<float>> map;  // (d_in + d_out) / L on voxels on an inlet–outlet path, else 0
};

// mask: nonzero = in the phase. InputError on a bad axis/connectivity.
GeometricTortuosity geometric_tortuosity(const Volume<std::uint8_t>& mask,
                                         const GeometricTortuosityOptions& options = {});

// Geodesic distance (µm) inside the mask from the voxels of the plane `index` along `axis`;
// +inf where unreachable or outside the mask.
Volume<float> geodesic_distance_from_plane(const Volume<std::uint8_t>& mask, int axis, index_t index,
                                           int connectivity = 26);

}  // namespace vp
