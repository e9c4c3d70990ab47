// Multi-scale Hessian "dark sheet" response on a grey image, for cracks one to three voxels
// wide that a threshold misses (partial-volume blur lifts them above the void level).
//
// At each scale σ (µm; a separable Gaussian of σ/hᵢ voxels per axis, so anisotropic spacing is
// honoured), the scale-normalised Hessian σ²·∇²(G_σ * I), by central differences of the
// smoothed image, has eigenvalues |λ1| ≤ |λ2| ≤ |λ3|. A dark sheet
// in a bright host has λ3 > 0 large and λ1, λ2 ≈ 0. Response (Descoteaux et al. 2005):
//   M = exp(−R_s²/2α²) · (1 − exp(−R_b²/2β²)) · (1 − exp(−S²/2c²)),
//   R_s = |λ2|/|λ3|, R_b = |2|λ3| − |λ2| − |λ1||/|λ3|, S = ‖λ‖, M = 0 where λ3 ≤ 0,
// with c = contrast_fraction × contrast (grey units; contrast = host level − void level).
// A step edge also looks like half a sheet on its dark side; a valley test rejects it: the
// smoothed grey at p ± 2σ·n (n = the λ3 eigenvector) must exceed the smoothed grey at p by
// valley_fraction × contrast on both sides, and (when host_level is given) the smoothed grey
// at p must lie that much below the host level; with ridge_only, p must be the valley floor
// (no darker smoothed grey one voxel away along ±n). The result is the maximum of M over the
// scales.
#pragma once

#include <limits>
#include <vector>

#include "core/volume.h"

namespace vp {

struct SheetnessOptions {
  std::vector<double> scales_vox{1, 2, 3};  // σ in voxels of the finest spacing
  double alpha = 0.5;
  double beta = 0.5;
  double contrast = 0;  // host − void grey level; must be > 0
  double contrast_fraction = 0.15;
  double valley_fraction = 0.1;
  // When finite: the sheet centre's smoothed grey must also lie valley_fraction × contrast
  // below this host level (a thin host neck between brighter phases is no crack).
  double host_level = std::numeric_limits<double>::quiet_NaN();
  // Keep only the valley floor: the smoothed grey one voxel away along ±n is not darker
  // (a one-voxel-thin ridge instead of a band σ wide).
  bool ridge_only = true;
};

// Sheet response in [0, 1] per voxel. Throws InputError when contrast ≤ 0 or a scale ≤ 0.
Volume<float> dark_sheetness(const Volume<float>& grey, const SheetnessOptions& options);
// The same response, evaluated only at voxels where `where` != 0 (0 elsewhere): for callers that
// read it only there, the per-voxel Hessian analysis of the other voxels is skipped.
Volume<float> dark_sheetness(const Volume<float>& grey, const SheetnessOptions& options,
                             const Volume<std::uint8_t>& where);
// For callers that only threshold the response (detect_cracks' hysteresis): replaces each voxel
// of `where` != 0 by the level its response reaches, 1 from `low`, 2 from `high` (0 below low and
// outside the mask), the same thresholds of the same float values as dark_sheetness(grey,
// options, where), without its float volume (4 B/voxel).
void dark_sheetness_levels(const Volume<float>& grey, const SheetnessOptions& options, Volume<std::uint8_t>& where,
                           double low, double high);

}  // namespace vp
