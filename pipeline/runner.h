// Runs a validated batch: each sample is read (ROI applied), its stages run in order on a
// SampleContext, its rows collected; samples run concurrently on oneTBB within --jobs and a
// memory budget. A failing sample is recorded with its error and the batch goes on. Then the
// report stages run on the finished run folder.
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
  std::filesystem::path out_dir;   // empty: the config's output
  int jobs = 0;                    // samples at once; 0: the number of threads
  std::vector<std::string> only;   // sample names; empty: all
  std::uint64_t max_memory = 0;    // bytes; 0: default_memory_budget()
};

struct RunResult {
  std::filesystem::path run_dir;
  RunRecord record;
  int failed_samples = 0;
  int failed_report_stages = 0;
  int exit_code() const { return failed_samples + failed_report_stages > 0 ? 4 : 0; }
};

RunResult run_batch(const Config& config, const RunOptions& options, Progress& progress);

// Reads the sample's volumes into ctx (grey for kind grey, labels for kind labels or a labels
// companion) with the config's spacing and phase table; fills the record's provenance fields.
void load_sample(const SampleConfig& sample, const PhaseTable& phases, SampleContext& ctx, SampleRecord& record);

// Peak bytes the sample needs: voxels × (loaded element sizes + max bytes_per_voxel of its stages).
std::uint64_t estimate_sample_bytes(const SampleConfig& sample, const std::vector<StageConfig>& stages);

// Half the physical memory: leaves room for the OS and for estimates that run short.
std::uint64_t default_memory_budget();

// "4G", "512M", "1.5G", "2000000" (binary units K, M, G, T; optional trailing B/iB).
// Throws InputError naming the flag.
std::uint64_t parse_bytes(const std::string& text, const std::string& flag = "--max-memory");
std::string format_bytes(std::uint64_t bytes);  // "1.5 GiB"

}  // namespace vp
