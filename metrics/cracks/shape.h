// Shape of one voxel set in physical units: principal axes from its inertia (covariance)
// tensor, the sheet aspect ratio that tells cracks from pores, and the mid-surface area of a
// sheet by projection along its normal.
#pragma once

#include <array>
#include <vector>

#include "core/volume.h"

namespace vp {

struct PrincipalAxes {
  Vec3 centroid_um{0, 0, 0};         // mean voxel centre, origin included
  std::array<double, 3> variance{};  // µm², descending: along axis[0] ≥ axis[1] ≥ axis[2]
  std::array<Vec3, 3> axis{};        // unit vectors; axis[2] = the sheet normal
};

// Covariance of the voxel centres (linear indices into a volume of `dims`), each voxel also
// counting its own extent (h²/12 per axis), so a single voxel layer has a finite thickness.
PrincipalAxes principal_axes(const std::vector<index_t>& voxels, const Dims& dims, const Vec3& spacing_um,
                             const Vec3& origin_um = {0, 0, 0});

// Extent ratio of the middle to the smallest principal axis, sqrt(variance[1]/variance[2]):
// ≈ L/t for a sheet of extent L and thickness t; ≈ 1 for a compact pore; small also for a
// needle, whose two small axes are alike.
double sheet_aspect(const PrincipalAxes& axes);

// Mid-surface area and opening of a sheet-like voxel set with unit normal n (µm², µm).
// The voxels are projected along the grid axis k closest to n (angle θ between them): the
// footprint F (distinct columns × pixel area hᵢ·hⱼ) of a planar slab of area A, thickness t
// and width W across the tilt direction is A·cos θ + t·sin θ·W (the slab's thickness smears
// the footprint along the tilt), so with t = V/A (V = voxel volume):
//   A² − (F / cos θ)·A + V·tan θ·W = 0,   A = the larger root.
// W is measured on the footprint. opening_mean = V/A, the mean opening along the normal;
// opening_max = the longest column run × h_k·cos θ. Exact for axis-aligned slabs; folded or
// curved sheets are underestimated.
struct SheetGeometry {
  double area_um2 = 0;
  double opening_mean_um = 0;
  double opening_max_um = 0;
};
SheetGeometry sheet_geometry(const std::vector<index_t>& voxels, const Dims& dims, const Vec3& spacing_um,
                             const Vec3& normal);

// Eigen-decomposition of a symmetric 3×3 matrix (cyclic Jacobi): eigenvalues descending and the
// matching unit eigenvectors.
void symmetric_eigen(const std::array<std::array<double, 3>, 3>& m, std::array<double, 3>& values,
                     std::array<Vec3, 3>& vectors);

}  // namespace vp
