// The segment, cleanup and particles stages' parameters as the filters' options: the stages'
// run() and the `segment` command (its flags are those parameters) both build options here, so a
// key means the same in a config and on the command line; the partial-volume counters both
// report are written here too.
#pragma once

#include <nlohmann/json.hpp>

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

// An auto segmentation's evidence per K and partial-volume counters (mixed_voxels, map_flips, ...):
// the keys the segment stage's details["partial_volume"] and the `segment` command's summary
// "fit" share, so a counter added here reaches both. `r` must hold an auto fit.
nlohmann::json partial_volume_counters_json(const SegmentResult& r);

}  // namespace vp
