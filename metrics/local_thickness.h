// Local thickness (Hildebrand & Rüegsegger 1997): at each voxel of a phase, the diameter of
// the largest ball that contains the voxel and fits inside the phase.
//
// Exact definition used here, in µm: the phase is the union of its voxel cubes; a ball is
// centred at a voxel centre c with radius r(c) = distance from c to the nearest background
// voxel cube (squared_distance_to_boundary), i.e. the largest ball at c inside the phase. The
// local thickness of voxel p is 2·max{ r(c) : |p - c| < r(c) }. A slab t voxels thick gives
// t·h for odd t (the ball sits on the middle voxel) and (t-1)·h for even t (balls are
// centred on voxel centres, never between two); a voxelised sphere |x - c| <= R gives about
// 2R·h at its centre (its cube surface is stepped).
//
// Balls whose voxels a 26-neighbour's ball paints too (the neighbour's r² exceeds the farthest
// voxel of the ball as seen from the neighbour, computed per distinct radius; or r(n) >= r(c) +
// |n - c|) are dropped before painting (exactly redundant: about a third of the phase's voxels
// stay, not nearly all as with containment of continuous balls alone); per distinct radius and
// neighbour offset type that test is one float comparison against the least covering r². The
// rest are painted plane by plane in parallel, largest first, each plane marking its painted
// voxels in a bitmap: the first ball to reach a voxel is the largest containing it, so every
// voxel is written once and a ball's row costs a word or two, not its length. The value is the
// maximum whatever the order, so the result does not depend on the thread count. Memory: the
// boundary distance map (4 B/voxel) and the kept balls (4 B each: the centre in its plane, the
// radius once per run of equal radii); the result is painted into the distance map's buffer.
#pragma once

#include <cstdint>

#include "core/volume.h"
#include "metrics/distribution.h"

namespace vp {

struct LocalThicknessOptions {
  bool outside_is_background = false;  // true: the six faces bound the phase (balls stop there)
};

// Local thickness in µm on foreground voxels (mask != 0), 0 elsewhere; +inf on every foreground
// voxel when there is no background at all (and outside_is_background is false).
Volume<float> local_thickness(const Volume<std::uint8_t>& foreground, const LocalThicknessOptions& options = {});
// The same into `thickness`, reusing its buffer when it has the mask's dims (a caller looping over
// phases maps and faults in one volume, not one per phase; every voxel is overwritten).
void local_thickness(const Volume<std::uint8_t>& foreground, Volume<float>& thickness,
                     const LocalThicknessOptions& options = {});

// Distribution of the local thickness over the foreground voxels.
Distribution thickness_distribution(const Volume<float>& thickness, const Volume<std::uint8_t>& foreground);

}  // namespace vp
