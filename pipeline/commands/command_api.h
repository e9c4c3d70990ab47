// What the volume commands compute once their input is in memory, without the command line:
// the CLI (after parsing flags and reading the file) and the Python module (after wrapping NumPy
// arrays) both call these, so they return the same numbers under the same JSON keys.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/metric_row.h"
#include "core/stage.h"
#include "filters/io/volume_io.h"
#include "filters/segment/segmenter.h"

namespace vp {

// `voxpress segment`'s clean-up flags, which name classes by index: --open R / --close R act on
// the --cleanup-label class (default the brightest), --min-island V on every class, --fill-holes
// on the --cleanup-label class. --open/--close/--min-island also take the cleanup stage's map
// ({phase2: 0.5}); stage_values holds the flags named like its keys (min_island_voxels).
struct ClassCleanupFlags {
  std::string open, close, min_island;  // a number, a YAML map phase -> value, or empty
  bool fill_holes = false;
  int cleanup_label = -1;
  std::map<std::string, std::string> stage_values;
};
// Those flags as the cleanup stage's values by key over `classes` (class C named phaseC); throws
// InputError when --cleanup-label names no class.
std::map<std::string, std::string> cleanup_values(const ClassCleanupFlags& flags, const PhaseTable& classes);

// `voxpress solve`'s flags.
struct SolveRequest {
  std::string phase;       // --phase: names or labels, A-B ranges
  std::string cond;        // --cond: LABEL=VALUE,...
  std::string axis = "z";  // x, y, z or all
  // Further `transport` stage values by key, as YAML text ({"tol": "1e-8", "periodic": "true"}):
  // the flags generated from the stage's params(); keys not given take the stage's defaults.
  std::map<std::string, std::string> params;
  std::string unit = "1";
  std::string out_dir;            // empty: write nothing
  int threads = 0;                // 0: all
  std::string engine = "native";  // --engine: native or petsc (PETSc + MPI, pipeline/mpi/)
  // Labels present in the whole volume when ctx.labels is one rank's slab (for A-B ranges);
  // empty: taken from ctx.labels.
  std::vector<int> labels_present;
};

// Runs the transport stage on ctx.labels. Returns solve --json without "input": phase,
// conductivities, conductivity_unit, settings, one object per axis, and outputs with out_dir.
nlohmann::json solve_sample(SampleContext& ctx, const SolveRequest& request);
// True unless an axis ended "not_converged" (the CLI then exits 3).
bool solve_converged(const nlohmann::json& solve_json);

// Runs the measurement stages that `metrics` names (a comma list of metric or stage names; empty:
// all that apply) on ctx.labels (and ctx.particles); the rows are left in ctx.rows.
// connectivity_params: the `connectivity` stage's values by key ({"connectivity": "26"}).
void measure_sample(SampleContext& ctx, const std::string& metrics,
                    const std::map<std::string, std::string>& connectivity_params = {});
// The `measure` flags taken from the connectivity stage's params().
extern const std::vector<std::string> kMeasureConnectivityFlags;

// `voxpress cracks`'s flags (empty strings: the stage's defaults).
struct CracksRequest {
  std::string host = "electrolyte";  // role or phase names/labels, comma-separated
  std::string void_phases = "pore";
  bool use_grey = true;  // false: --no-grey-sheetness
  // Further `cracks` stage values by key, as YAML text ({"min_aspect": "3"}): the flags generated
  // from the stage's params(); keys not given take the stage's defaults.
  std::map<std::string, std::string> params;
  std::string out_dir;  // empty: write nothing
};

// Runs the cracks stage on ctx.labels (ctx.grey, ctx.particles when set; pressing axis from
// ctx.sample). Returns cracks --json without "input": the stage's details plus "rows".
nlohmann::json cracks_sample(SampleContext& ctx, const CracksRequest& request);

// `voxpress segment --json`'s per-class and fit keys for labels segmented from `grey`: classes
// [{label, mean, sigma, fraction}], volume_fraction, psf_sigma_vox (+ ci95, status) and, for
// method auto, volume_fraction_pv, volume_fraction_pv_ci95, fit and warnings; mixture for gmm.
nlohmann::json segmentation_summary(const Volume<float>& grey, const SegmentResult& r);

// `voxpress info`'s JSON for a volume read by `read`; spacing_source: "flag", "file" or "default".
nlohmann::json info_json(const ReadResult& read, const std::string& spacing_source);

// `voxpress dvc`'s flags.
struct DvcRequest {
  index_t node_spacing = 8;  // voxels between nodes
  index_t subset = 16;       // subset edge, voxels
  bool affine = false;       // affine registration (default rigid)
  std::string out_dir;       // empty: write nothing
};

// DVC of two scans of equal dims and spacing (InputError otherwise): registration, node grid,
// strain, and with `particle_ids` the particle tracking. Returns dvc --json without "input":
// registration, strain, heterogeneity, nodes, particles (with ids), particles_summary, outputs.
// ComputeError when too few nodes are valid for the strain fit.
nlohmann::json dvc_pair(const Volume<float>& reference, const Volume<float>& deformed,
                        const Volume<std::uint32_t>* particle_ids, const DvcRequest& request);

}  // namespace vp
