// The three faces of every pipeline stage: declared parameters, a preflight that
// validates them without touching voxels, and run. The runner only knows this
// interface; a stage never reaches back into the runner.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/metric_row.h"
#include "core/params.h"
#include "core/phase_table.h"
#include "core/progress.h"
#include "core/volume.h"
#include "core/z_slabs.h"

namespace vp {

// What a sample holds as data flows through the stages (bit flags).
enum DataFlag : unsigned {
  kGrey = 1u << 0,       // greyscale intensities
  kLabels = 1u << 1,     // phase labels with phase table
  kParticles = 1u << 2,  // separated particle ids (0 = none)
  kCracks = 1u << 3,     // crack ids (0 = none)
};
std::string describe_data(unsigned flags);  // "grey, labels"

// The sample's entry in the config, resolved.
struct SampleInfo {
  std::string name;
  std::string series;
  double pressure_MPa = 0;
  std::string path;         // absolute
  std::string labels_path;  // absolute, or empty
  Vec3 spacing_um{1, 1, 1};
  int pressing_axis = 2;  // 0 = x, 1 = y, 2 = z
};

// One metric a stage emits into metrics.csv: its name (a contract, see README), its unit, and
// what one row is per: "sample", "phase", "pair" (am|se), "triple" (am|se|pore), "axis",
// "phase, axis". A unit in braces names the stage parameter that gives it ("{conductivity_unit}").
struct MetricSpec {
  std::string name;
  std::string unit;
  std::string per;
};

// Everything one sample carries between stages, and what stages add to its results.
struct SampleContext {
  SampleInfo sample;
  std::optional<AnyVolume> grey;
  std::optional<LabelVolume> labels;
  std::optional<Volume<std::uint32_t>> particles;
  std::optional<Volume<std::uint32_t>> cracks;
  // Set when `labels` is only this MPI rank's z-slab of the volume (distributed commands,
  // pipeline/mpi/); stages that support it then work on the whole volume across the ranks.
  std::optional<ZSlabLayout> slab;
  // The config's phase table (names, labels, roles), for stages that create labels; null or
  // empty when the config has none. Set by the runner.
  const PhaseTable* config_phases = nullptr;
  // The series' reference scan, its lowest-pressure sample, for stages that register this sample
  // to it (`align`): its name and a loader of its volume as configured. Both empty when this
  // sample is the reference or runs alone. Set by the runner.
  std::string series_reference;
  std::function<AnyVolume()> load_series_reference;

  // Set by a command whose one stage is the labels' last reader (`solve`): that stage may take
  // their voxels (LabelVolume::release_voxels) once it no longer needs them; dims, spacing,
  // provenance and phases stay.
  bool labels_last_use = false;

  std::filesystem::path out_dir;  // this sample's output folder (exists)
  int threads = 1;
  Progress* progress = nullptr;
  std::string current_stage;  // set by the runner

  std::vector<MetricRow> rows;                        // appended by stages; runner fills MetricRow::stage
  nlohmann::json details = nlohmann::json::object();  // this stage's structured results (reset per stage)
  std::vector<std::filesystem::path> artifacts;       // files written (images, tables, fields)

  // The running stage's declared metrics (set by run_stage): add() refuses any other name.
  std::optional<std::vector<MetricSpec>> declared_metrics;

  void add(std::string metric, std::string phase, std::string axis, double value, std::string unit);
  // The path of an output file of this stage in out_dir, recorded in `artifacts`; nothing (and
  // no record) when the sample has no output folder, so a stage run by a command without --out
  // writes no file anywhere. Writers that write atomically themselves take this path.
  std::optional<std::filesystem::path> artifact(const std::string& file_name);
  // artifact(file_name) written atomically with `bytes`; nothing without an output folder.
  void write_artifact(const std::string& file_name, const std::string& bytes);
  // Both are also checkpoints of the calling thread's progress hook (progress_point): a stage
  // that reports can be stopped there (Ctrl-C in Python) and its fraction reaches the caller.
  void report(const std::string& text) const {
    if (progress) progress->message(sample.name, current_stage, text);
    cancellation_point();
  }
  void report_fraction(double done) const {
    if (progress) progress->fraction(sample.name, current_stage, done);
    progress_point(done);
  }
};

// What a stage can see of the sample before anything runs.
struct PreflightContext {
  const PhaseTable& phases;  // the config's phase table (may be empty)
  unsigned available = 0;    // DataFlag bits present when this stage starts
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual std::string name() const = 0;     // the YAML `stage:` value
  virtual std::string summary() const = 0;  // one line for `voxpress stages`
  virtual std::vector<ParamSpec> params() const = 0;
  // Keys it took once and no longer does: a config or flag naming one fails saying why (Params::removed).
  virtual std::vector<RemovedParam> removed_params() const { return {}; }
  // The metrics its rows carry (ctx.add refuses others); `voxpress stages --json` lists them.
  virtual std::vector<MetricSpec> metrics() const { return {}; }
  virtual unsigned needs() const = 0;  // DataFlag bits that must be present
  virtual unsigned provides() const { return 0; }
  // Peak working memory beyond the sample's own volumes, in bytes per voxel (scheduler budget).
  virtual double bytes_per_voxel() const { return 8.0; }
  // True for a stage whose results depend on the series' reference scan too (`align`): --resume
  // then also compares that scan's hash.
  virtual bool reads_series_reference() const { return false; }
  // Checks that need the phase table or the data flow (generic type checks are done already).
  virtual void preflight(const Params&, const PreflightContext&, Diagnostics&) const {}
  virtual void run(const Params& params, SampleContext& ctx) const = 0;
};

// Runs `stage` on ctx as the runner and the commands do: ctx.current_stage names it, ctx.details
// starts empty, and ctx.add refuses a metric the stage does not declare (std::logic_error: a bug
// in the stage, caught by its tests).
void run_stage(const Stage& stage, const Params& params, SampleContext& ctx);

// Runs once after all samples of a batch (aggregation, report), on the finished run folder.
class BatchStage {
 public:
  virtual ~BatchStage() = default;
  virtual std::string name() const = 0;
  virtual std::string summary() const = 0;
  virtual std::vector<ParamSpec> params() const = 0;
  virtual void preflight(const Params&, Diagnostics&) const {}
  virtual void run(const Params& params, const std::filesystem::path& run_dir, Progress& progress) const = 0;
};

// A CLI subcommand: `voxpress NAME args...`. Returns the process exit code.
struct Command {
  std::string name;
  std::string summary;
  std::function<int(const std::vector<std::string>& args)> run;
};

class Registry {
 public:
  static Registry& global();  // filled by register_all() in pipeline/catalog.cpp

  void add(std::unique_ptr<Stage> stage);
  void add(std::unique_ptr<BatchStage> stage);
  void add(Command command);

  const Stage* stage(const std::string& name) const;
  const BatchStage* batch_stage(const std::string& name) const;
  const Command* command(const std::string& name) const;
  const std::vector<std::unique_ptr<Stage>>& stages() const { return stages_; }
  const std::vector<std::unique_ptr<BatchStage>>& batch_stages() const { return batch_stages_; }
  const std::vector<Command>& commands() const { return commands_; }

 private:
  std::vector<std::unique_ptr<Stage>> stages_;
  std::vector<std::unique_ptr<BatchStage>> batch_stages_;
  std::vector<Command> commands_;
};

}  // namespace vp
