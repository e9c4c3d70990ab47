// The segment, cleanup and particles stages' parameters as the filters' options: the stages'
// run() and the `segment` command (its flags are those parameters) both build options here, so a
// key means the same in a config and on the command line.
#pragma once

#include "core/params.h"
#include "core/phase_table.h"
#include "filters/segment/cleanup.h"
#include "filters/segment/particles.h"
#include "filters/segment/segmenter.h"

namespace vp {

// Method, classes (given, else the highest class of `phases` + 1, else 2), thresholds, bins,
// connectivity and the partial-volume settings. The forest model is left to the caller.
SegmentOptions segment_options(const Params& p);
// Phase names resolved in `table` (an unknown name fails at its key); min_island_voxels becomes
// µm³ with `spacing_um`.
CleanupOptions cleanup_options(const Params& p, const PhaseTable& table, const Vec3& spacing_um);
// h, min_volume and connectivity (the phase is resolved by the caller, which knows the table).
ParticleOptions particle_options(const Params& p);

}  // namespace vp
