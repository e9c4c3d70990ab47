// Exact Euclidean distance transforms on voxel grids with anisotropic spacing.
//
// Convention (the one scipy.ndimage.distance_transform_edt uses, in µm):
//   distance(p) = min over background voxels b of |centre(p) - centre(b)|, with
//   |v|² = (vx·hx)² + (vy·hy)² + (vz·hz)²;  0 on background voxels.
// So a foreground line one voxel thick has distance 1·h. Voxels outside the volume are not
// background unless DistanceOptions::outside_is_background; a foreground voxel with no
// background anywhere gets +inf.
//
// The boundary variant measures instead to the nearest point of the background's voxel
// cubes (half a voxel closer along an axis): the radius of the largest ball centred at the
// voxel centre that fits inside the foreground taken as a union of voxel cubes. Local
// thickness is built on it.
//
// Algorithm: separable lower envelope (Felzenszwalb–Huttenlocher / Meijster), one pass per
// axis, oneTBB-parallel over lines; exact, O(N), results independent of the thread count. The
// first pass is two scans (its input is 0 or +inf); a later line whose values are all small
// takes the minimum by direct search over the few sites that can win, the very same sums.
#pragma once

#include <cstdint>

#include "core/volume.h"

namespace vp {

struct DistanceOptions {
  bool outside_is_background = false;  // treat everything beyond the six faces as background
};

// Squared distance in µm² to the nearest background voxel centre (foreground = mask != 0).
Volume<float> squared_distance_transform(const Volume<std::uint8_t>& foreground, const DistanceOptions& options = {});
// The same into `out`, reusing its buffer when it has the mask's dims (a scratch buffer never
// zero-filled: every voxel is overwritten, by the first pass, in parallel).
void squared_distance_transform(const Volume<std::uint8_t>& foreground, Volume<float>& out,
                                const DistanceOptions& options = {});

// Distance in µm to the nearest background voxel centre (square root of the above).
Volume<float> distance_transform(const Volume<std::uint8_t>& foreground, const DistanceOptions& options = {});

// Squared distance in µm² from each foreground voxel centre to the nearest point of a background
// voxel cube: per axis max(|Δi| - ½, 0)·hi. 0 on background voxels.
Volume<float> squared_distance_to_boundary(const Volume<std::uint8_t>& foreground, const DistanceOptions& options = {});
// The same into `out`, reusing its buffer when it has the mask's dims (no new volume to map and
// fault in; every voxel is overwritten).
void squared_distance_to_boundary(const Volume<std::uint8_t>& foreground, Volume<float>& out,
                                  const DistanceOptions& options = {});

// A phase's mask from a label volume: phase_mask() in metrics/phase_fractions.h.

}  // namespace vp
