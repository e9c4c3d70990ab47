// CT reconstruction artefacts about the rotation axis (z): rings and radial cupping
// (beam hardening). Both act on each z slice about the rotation centre.
#pragma once

#include <vector>

#include "core/volume.h"

namespace vp {

struct RadialGeometry {
  // Rotation centre in voxel coordinates (x, y); negative = the slice centre ((n - 1) / 2).
  double centre_x = -1, centre_y = -1;
};

// Ring removal in polar coordinates: per slice, the median over angle of each one-voxel radial
// shell gives a radial profile; a ring is where that profile departs from its running median
// over `window` shells. The departure is subtracted from every voxel of the shell.
// Structures that are not rotationally symmetric survive; only shell-wise offsets are removed.
Volume<float> reduce_rings(const Volume<float>& grey, const RadialGeometry& geometry = {}, int window = 9);

// Cupping: fits c0 + c1 r² + ... + c_k r^(2k) (r in µm from the centre, degree = k) to the
// slice-mean radial profile of the whole volume (least squares over all voxels) and subtracts
// the fitted shape minus its volume mean, so that the mean grey value is kept.
struct CuppingFit {
  Volume<float> grey;
  std::vector<double> coefficients;  // of r^0, r^2, r^4, ... (r in µm)
};
CuppingFit correct_cupping(const Volume<float>& grey, const RadialGeometry& geometry = {}, int degree = 2);

}  // namespace vp
