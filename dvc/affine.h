// 3×3 matrices and first-order (affine) warps in voxel coordinates: a point X of the reference
// maps to x = centre + F·(X − centre) + t in the deformed scan. F = I + ∇u; t is the displacement
// of the centre. Rotation is taken from the polar decomposition F = R·U.
#pragma once

#include <array>

#include "core/volume.h"

namespace vp::dvc {

using Mat3 = std::array<std::array<double, 3>, 3>;

Mat3 identity3();
Mat3 multiply(const Mat3& a, const Mat3& b);
Vec3 multiply(const Mat3& a, const Vec3& v);
Mat3 transpose(const Mat3& a);
double determinant(const Mat3& a);
Mat3 inverse(const Mat3& a);  // a must be invertible
// Rotation part R of F = R·U (F with positive determinant).
Mat3 polar_rotation(const Mat3& f);
// Rotation vector (axis × angle) of a rotation matrix, in degrees.
Vec3 rotation_vector_deg(const Mat3& r);
// Rotation matrix of a rotation vector in degrees (Rodrigues).
Mat3 rotation_matrix_deg(const Vec3& rotvec_deg);

struct AffineWarp {
  Vec3 centre{0, 0, 0};
  Mat3 f = identity3();
  Vec3 t{0, 0, 0};
  Vec3 apply(const Vec3& X) const;            // X in the reference → x in the deformed scan
  Vec3 displacement(const Vec3& X) const;     // apply(X) − X
  AffineWarp recentred(const Vec3& c) const;  // the same map written about another centre
};

}  // namespace vp::dvc
