// Clean-up of phase-label volumes: small islands, enclosed holes, opening and closing with
// radii in µm (anisotropic spacing gives ellipsoidal structuring elements in voxels).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/volume.h"

namespace vp {

// Binary morphology on mask != 0 with a Euclidean ball of radius_um (voxel centres within
// radius_um of each other, in µm). Exact: the voxels an exact distance transform puts within the
// radius; balls of up to 128 voxel rows are applied row by row (a byte per voxel of scratch, no
// float volume), larger ones through the transform. The outside of the volume is neither set nor
// background: erosion does not eat in from the border.
Volume<std::uint8_t> dilate(const Volume<std::uint8_t>& mask, double radius_um);
Volume<std::uint8_t> erode(const Volume<std::uint8_t>& mask, double radius_um);

// Connected regions (connectivity 6 or 26) of `label` with fewer than min_voxels voxels are
// given to their surroundings: each removed voxel takes the most frequent other label among
// its face neighbours, layer by layer from the outside in. Returns the number of islands removed.
std::size_t remove_small_islands(Volume<std::uint8_t>& labels, std::uint8_t label, index_t min_voxels,
                                 int connectivity = 26);

// Regions of other labels that `label` encloses (6-connected components of "not label" that
// do not touch the volume border) become `label`. Returns the number of voxels filled.
index_t fill_holes(Volume<std::uint8_t>& labels, std::uint8_t label);

// Morphological opening / closing of one phase; voxels the phase loses are given to the most
// frequent neighbouring other label (as for islands). Returns the number of voxels changed.
index_t open_phase(Volume<std::uint8_t>& labels, std::uint8_t label, double radius_um);
index_t close_phase(Volume<std::uint8_t>& labels, std::uint8_t label, double radius_um);

// Volume in µm³ -> voxel count for this spacing (rounded up, at least 1 when volume > 0).
index_t voxels_for_volume(double volume_um3, const Vec3& spacing_um);

// Clean-up steps in a fixed order: open, close, islands, holes (each per listed label).
struct CleanupOptions {
  std::vector<std::pair<std::uint8_t, double>> min_island_um3;     // label -> minimum volume
  std::vector<std::uint8_t> fill_holes;                            // labels whose holes are filled
  std::vector<std::pair<std::uint8_t, double>> open_um, close_um;  // label -> radius in µm
  int connectivity = 26;                                           // for islands
};
struct CleanupReport {
  std::size_t islands_removed = 0;
  index_t voxels_filled = 0, voxels_opened = 0, voxels_closed = 0;
};
CleanupReport cleanup_labels(Volume<std::uint8_t>& labels, const CleanupOptions& options);

}  // namespace vp
