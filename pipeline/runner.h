// Runs a validated batch: each sample runs in its own worker process (this program executed
// again with the hidden command `__sample`), which reads it (ROI applied), runs its stages in order
// on a SampleContext and hands its record back as JSON. Workers run concurrently within --jobs
// and a memory budget; a sample whose estimate exceeds the budget or the machine is refused up
// front. A failing sample (an error, or a worker killed by a signal: segfault, abort, the OOM
// killer) is recorded with its error and the batch goes on. Then the report stages run on the
// finished run folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/progress.h"
#include "pipeline/config.h"
#include "pipeline/outputs.h"

namespace vp {

struct RunOptions {
  std::filesystem::path out_dir;  // empty: the config's output
  int jobs = 0;                   // samples at once; 0: the number of threads
  std::vector<std::string> only;  // sample names; empty: all
  std::uint64_t max_memory = 0;   // bytes; 0: default_memory_budget()
  bool resume = false;            // keep complete samples whose inputs and settings are unchanged
  bool force = false;             // write into a non-empty folder that is not a run folder
  // The program that runs one sample (`PROGRAM __sample ...`); empty: this program
  // (/proc/self/exe). Its main must hand `__sample` to sample_worker_main.
  std::filesystem::path worker_program;
};

struct RunResult {
  std::filesystem::path run_dir;
  RunRecord record;
  int failed_samples = 0;
  int failed_report_stages = 0;
  int exit_code() const { return failed_samples + failed_report_stages > 0 ? 4 : 0; }
};

RunResult run_batch(const Config& config, const RunOptions& options, Progress& progress);

// The hidden command of a worker process: `__sample CONFIG --run-dir DIR --token T --sample NAME
// --threads N --config-sha256 H`. Runs that one sample of the config (loaded with `registry`)
// into its working folder, renames it into place on success and writes its record to
// sample_result_file(). Returns 0 when the record was written, whatever the sample's outcome.
int sample_worker_main(const std::vector<std::string>& args, const Registry& registry);

// Canonical hash of what determines a sample's results apart from its input bytes: its resolved
// config (paths, kind, format options, ROI, spacing, pressure, series), the phase table, the
// stage list with every parameter's resolved value, and the voxpress version.
std::string sample_settings_hash(const Config& config, const SampleConfig& sample);
// SHA-256 over the bytes of the files a sample reads (its volume, a folder's or glob's files,
// a .mhd/.nhdr header's data files beside it, the labels companion, and the series' reference
// scan when a stage reads it).
std::string sample_inputs_hash(const Config& config, const SampleConfig& sample);

// The reference scan of the sample's series: the series' sample of lowest pressure (the first in
// the config among equals). Null when that is the sample itself.
const SampleConfig* series_reference(const Config& config, const SampleConfig& sample);

// Reads the sample's volumes into ctx (grey for kind grey, labels for kind labels or a labels
// companion) with the config's spacing and phase table; fills the record's provenance fields.
void load_sample(const SampleConfig& sample, const PhaseTable& phases, SampleContext& ctx, SampleRecord& record);

// Peak bytes the sample needs: voxels × (loaded element sizes + max bytes_per_voxel of its stages).
std::uint64_t estimate_sample_bytes(const SampleConfig& sample, const std::vector<StageConfig>& stages);

// Half the physical memory: leaves room for the OS and for estimates that run short.
std::uint64_t default_memory_budget();
// What this machine can give a sample now: MemAvailable, and no more than what the cgroup's
// memory limit leaves (cgroup v2 memory.max − memory.current, or v1 limit − usage) when one is set.
std::uint64_t machine_memory_available();

// "4G", "512M", "1.5G", "2000000" (binary units K, M, G, T; optional trailing B/iB).
// Throws InputError naming the flag.
std::uint64_t parse_bytes(const std::string& text, const std::string& flag = "--max-memory");
std::string format_bytes(std::uint64_t bytes);  // "1.5 GiB"

}  // namespace vp
