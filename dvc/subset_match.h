// Inverse-compositional Gauss–Newton (IC-GN) matching of a reference subset in a deformed scan,
// with a first-order (12-parameter affine) shape function and the zero-normalised SSD criterion
// (insensitive to grey offset and gain between scans). One matcher serves the node grid, the
// particle tracker and the global registration (whose "subset" is the whole scan, sub-sampled).
//
// IC-GN: the Hessian is built once from the reference gradients; each iteration interpolates the
// deformed scan (cubic B-spline) at the warped points and composes the current warp with the
// inverse of the increment (Pan et al., Exp. Mech. 2013; the scheme SPAM and pyALDVC also use).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/volume.h"
#include "dvc/affine.h"
#include "dvc/bspline.h"

namespace vp::dvc {

struct SubsetTemplate {
  Vec3 centre{0, 0, 0};                       // voxels of the reference
  std::vector<std::array<float, 3>> offsets;  // point − centre
  std::vector<float> f;                       // reference grey at the points
  std::vector<std::array<float, 12>> sd;      // steepest-descent images ∇f·∂W/∂p
  std::array<double, 144> hessian{};          // Σ sdᵀ sd over all points
  double f_mean = 0, f_norm = 0;              // mean and √Σ(f − mean)²
  double f_std = 0;                           // grey standard deviation of the subset
  double extent = 1;                          // largest |offset| component (scales the gradient terms)
  bool empty() const { return f.empty(); }
};

// Template from reference voxels `points` (each with 1 ≤ i ≤ n−2 per axis) about `centre`.
SubsetTemplate make_template(const Volume<float>& ref, const BSplineVolume& ref_spline, const Vec3& centre,
                             const std::vector<std::array<index_t, 3>>& points);
// The cube of half-width h voxels about an integer node (2h+1 points per axis), or an empty
// template when it does not fit in the volume.
SubsetTemplate cube_template(const Volume<float>& ref, const BSplineVolume& ref_spline,
                             const std::array<index_t, 3>& node, index_t h);

enum class MatchStatus { converged, not_converged, outside, singular };

struct MatchOptions {
  int max_iterations = 40;
  double tolerance = 1e-4;  // stop when |Δt| + extent·|ΔF| (voxels) falls below this
  bool rigid = false;       // project F onto its rotation after every update
  bool translation_only = false;
  bool allow_partial = false;  // drop points that leave the deformed scan (registration) instead of failing
};

struct MatchResult {
  AffineWarp warp;
  double residual = 0;  // ZNSSD = Σ((f−f̄)/‖f‖ − (g−ḡ)/‖g‖)², 0 (identical) … 4; = 2(1 − ZNCC)
  int iterations = 0;
  MatchStatus status = MatchStatus::not_converged;
};

MatchResult match_subset(const SubsetTemplate& tpl, const BSplineVolume& def, const AffineWarp& start,
                         const MatchOptions& options);

}  // namespace vp::dvc
