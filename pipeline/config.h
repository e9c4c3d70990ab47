// The YAML batch configuration: samples, phase table, stages and report stages.
// load_config() validates everything before any voxel is read (keys, types, values, files,
// file headers, the stages' parameters and the data flow between stages) and reports every
// problem as "file:line:column: key.path: what was found; what was expected".
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/params.h"
#include "core/phase_table.h"
#include "core/stage.h"
#include "filters/io/volume_io.h"

namespace vp {

// One sample of the batch, resolved: absolute paths, inherited defaults, probed header.
struct SampleConfig {
  SampleInfo info;                    // name, series, pressure, paths, spacing, pressing axis
  std::string kind = "grey";          // grey | labels
  ReadOptions read;                   // the main volume (ROI included)
  std::optional<ReadOptions> labels;  // companion label volume of a grey sample
  VolumeInfo header;                  // probed at validation (dims of the whole file)
  std::optional<VolumeInfo> labels_header;
  std::optional<Box> roi;
  bool spacing_from_config = false;  // voxel_size_um given (wins over the file)
  // The data file cannot be used (missing, unreadable header, empty, companion dims differ).
  // `validate` reports it as an error; `run` records this sample as failed and runs the others.
  std::optional<Diagnostic> file_problem;

  unsigned initial_data() const;               // DataFlag bits present after loading
  Dims loaded_dims() const;                    // ROI size, or the file's dims
  std::size_t loaded_bytes_per_voxel() const;  // sum of the element sizes of the loaded volumes
};

struct StageConfig {
  const Stage* stage = nullptr;
  Params params;
};

struct BatchStageConfig {
  const BatchStage* stage = nullptr;
  Params params;
};

struct Config {
  std::filesystem::path path;    // absolute path of the config file
  std::string sha256;            // of the config file's bytes
  std::string name;              // file stem
  std::filesystem::path output;  // run folder (absolute)
  PhaseTable phases;
  std::vector<SampleConfig> samples;
  std::vector<StageConfig> stages;
  std::vector<BatchStageConfig> report;
};

// Parses and validates; every problem of the config goes into diags (the returned Config is only
// meaningful when diags.ok()); problems of a sample's data file go into its file_problem.
// diags' file should be the config path as the user wrote it.
Config parse_config(const std::filesystem::path& path, const Registry& registry, Diagnostics& diags);

// parse_config, then throws InputError listing every diagnostic when there is any (samples'
// file problems excepted: the runner records them per sample).
Config load_config(const std::filesystem::path& path, const Registry& registry);

// The config's diagnostics followed by every sample's file problem (what `validate` prints).
std::vector<Diagnostic> all_problems(const Diagnostics& diags, const Config& config);

// The keys of the config's sections, with types, units and defaults (validation and docs).
std::vector<ParamSpec> top_level_specs();
std::vector<ParamSpec> defaults_specs();
std::vector<ParamSpec> sample_specs();
std::vector<ParamSpec> phase_specs();

}  // namespace vp
