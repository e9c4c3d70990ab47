// Cubic B-spline interpolation of a grey volume (Unser's prefilter, mirror boundaries).
// Interpolation error is far below the noise of a CT scan, and the spline's derivative is
// continuous, which inverse-compositional Gauss–Newton needs to converge to sub-0.01 voxel.
// Coordinates are in voxels of the volume, (x, y, z), x fastest; voxel centres are integers.
#pragma once

#include <cstddef>
#include <vector>

#include "core/volume.h"

namespace vp::dvc {

class BSplineVolume {
 public:
  BSplineVolume() = default;
  explicit BSplineVolume(const Volume<float>& image);

  const Dims& dims() const { return dims_; }
  // True when (x, y, z) has its whole 4×4×4 support inside the volume: 1 ≤ x < n−2 per axis.
  bool inside(double x, double y, double z) const {
    return x >= 1 && y >= 1 && z >= 1 && x < dims_.x - 2 && y < dims_.y - 2 && z < dims_.z - 2;
  }
  // Interpolated value; the point must be inside().
  float value(double x, double y, double z) const;
  // Gradient of the spline at a voxel centre (1 ≤ i ≤ n−2 per axis), grey units per voxel.
  void gradient_at(index_t i, index_t j, index_t k, float g[3]) const;

 private:
  Dims dims_;
  std::vector<float> coef_;
};

}  // namespace vp::dvc
