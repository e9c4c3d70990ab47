// Which voxels of a phase are connected to the low and/or high face of an axis.
//
// The kernel behind percolating / dead-end / isolated fractions and behind the
// transport solve's removal of voxels that carry no current. Connected-component
// labelling by union-find over z-slabs (oneTBB), so the cost is one pass over the
// volume whatever the tortuosity of the paths; the result does not depend on the
// thread count.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/volume.h"

namespace vp {

// Per-voxel bits of FaceReach::flags.
enum FaceReachBit : std::uint8_t {
  kInPhase = 1u << 0,   // voxel belongs to the mask
  kFromLow = 1u << 1,   // connected to a mask voxel on the low face (index 0) of the axis
  kFromHigh = 1u << 2,  // connected to a mask voxel on the high face (index N-1) of the axis
};

struct FaceConnectivityOptions {
  int axis = 2;          // 0 = x, 1 = y, 2 = z
  int connectivity = 6;  // 6 (faces), 18 (+ edges) or 26 (+ corners)
  // Sides that wrap around (periodic boundary), per axis. The entry of `axis` itself is
  // ignored: its two faces are the inlet and outlet, never joined.
  std::array<bool, 3> periodic{false, false, false};
};

struct FaceReach {
  Volume<std::uint8_t> flags;  // FaceReachBit per voxel; spacing/origin of the input
  index_t phase_voxels = 0;    // voxels in the mask
  index_t from_low = 0;        // reachable from the low face
  index_t from_high = 0;       // reachable from the high face
  index_t percolating = 0;     // reachable from both faces
  index_t dead_end = 0;        // reachable from exactly one face
  index_t isolated = 0;        // reachable from neither face

  bool percolates() const { return percolating > 0; }
  static bool is_percolating(std::uint8_t f) { return (f & (kFromLow | kFromHigh)) == (kFromLow | kFromHigh); }
};

// mask: nonzero = in the phase. Throws InputError on a bad axis/connectivity or an empty volume.
FaceReach face_reachability(const Volume<std::uint8_t>& mask, const FaceConnectivityOptions& options = {});

// Same over a label volume: the phase is every voxel whose label is in `labels` (phase_mask).
FaceReach face_reachability(const Volume<std::uint8_t>& label_volume, const std::vector<int>& labels,
                            const FaceConnectivityOptions& options = {});

}  // namespace vp
