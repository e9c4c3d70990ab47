// Small-strain tensors from DVC displacements: ε = (∇u + ∇uᵀ)/2 with ∇u in µm/µm (anisotropic
// spacing respected). Global strain from the least-squares affine fit u(x) = ∇u·(x − x̄) + ū of the
// valid nodes; the node field from central differences on the node grid; heterogeneity as the
// standard deviation and the 90th percentile of |ε_zz| over the nodes.
#pragma once

#include <vector>

#include "dvc/affine.h"
#include "dvc/dvc.h"

namespace vp::dvc {

struct StrainTensor {
  double xx = 0, yy = 0, zz = 0, xy = 0, xz = 0, yz = 0;
  double volumetric() const { return xx + yy + zz; }
  double component(int i, int j) const;  // (0..2, 0..2)
};
StrainTensor small_strain(const Mat3& grad);

struct GlobalStrain {
  StrainTensor strain;
  Mat3 gradient{};    // ∇u of the fit, µm/µm
  index_t nodes = 0;  // valid nodes used
};
// Throws ComputeError when fewer than 4 valid, non-coplanar nodes remain.
GlobalStrain fit_affine_strain(const NodeGrid& grid, const Vec3& spacing_um);

// One tensor per node (NaN components where the node or both neighbours along an axis are invalid).
std::vector<StrainTensor> node_strains(const NodeGrid& grid, const Vec3& spacing_um);

struct StrainHeterogeneity {
  double zz_std = 0;      // standard deviation of ε_zz over nodes with a finite tensor
  double zz_abs_p90 = 0;  // 90th percentile of |ε_zz|
  index_t nodes = 0;
};
StrainHeterogeneity strain_heterogeneity(const std::vector<StrainTensor>& field, int axis = 2);

}  // namespace vp::dvc
