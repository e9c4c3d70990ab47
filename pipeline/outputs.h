// The run folder, a contract users and later stages rely on:
//   RUN/metrics.csv   tidy long form: sample,series,pressure_MPa,stage,metric,phase,axis,value,unit
//   RUN/metrics.json  the same numbers (non-finite as null) plus provenance
//   RUN/run.log       everything the progress printed
//   RUN/config.yaml   a copy of the config that produced the run
//   RUN/.voxpress-run marker: this folder is a voxpress run folder (see run_folder.h)
//   RUN/samples/<sample>/  each sample's images and volumes, and .voxpress-sample.json (its record)
// Every file is written atomically (temporary name, then rename).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/csv.h"  // csv_field, kMetricsCsvHeader
#include "core/metric_row.h"
#include "core/stage.h"
#include "core/volume.h"

namespace vp {

struct StageRecord {
  std::string stage;
  double seconds = 0;
  nlohmann::json details = nlohmann::json::object();
};

// How a sample's worker process ended when it did not report a result: killed by a signal
// (segfault, abort, the kernel's OOM killer) or an exit without a result.
struct WorkerFailure {
  std::string signal;         // "SIGSEGV", ... or empty
  int exit_status = -1;       // when it exited
  std::string stage;          // the stage it was in, from its progress lines
  std::string last_progress;  // its last progress line
};

// One sample's outcome: its numbers, or the error that stopped it (then no rows, no folder).
struct SampleRecord {
  SampleInfo info;
  std::string kind;
  bool ok = false;
  std::string error;       // message of the failure
  std::string error_kind;  // input | compute | internal | memory | crash
  std::string input_sha256, labels_sha256;
  std::string dtype;
  Dims dims;  // as loaded (after the ROI)
  std::optional<Box> roi;
  std::vector<StageRecord> stages;
  std::vector<MetricRow> rows;
  std::vector<std::string> artifacts;  // relative to the run folder
  double seconds = 0;
  // Resume: canonical hash of the sample's resolved config, phase table, stage list and the
  // voxpress version (see sample_settings_hash).
  std::string settings_hash;
  std::uint64_t memory_estimate_bytes = 0;  // what the scheduler reserved
  std::uint64_t peak_rss_bytes = 0;         // the worker process's peak resident set (0: not run)
  std::optional<WorkerFailure> worker_failure;
  bool reused = false;  // taken from an earlier run's complete sample folder (--resume)
};

// Why --resume ran a sample again.
struct RedoneSample {
  std::string sample;
  std::string reason;  // "settings changed", "input changed", "missing", "incomplete", "failed before"
};

struct BatchStageRecord {
  std::string stage;
  bool ok = false;
  std::string error;
  double seconds = 0;
};

struct RunRecord {
  std::string config_path, config_sha256;
  std::string version;
  int threads = 1, jobs = 1;
  std::uint64_t memory_budget_bytes = 0;
  std::string started, finished;  // ISO 8601 UTC
  double seconds = 0;
  std::vector<SampleRecord> samples;
  std::vector<BatchStageRecord> report;
  bool resumed = false;              // --resume
  std::vector<RedoneSample> redone;  // with --resume: samples run again, and why
};

// Header plus one line per row of every successful sample, in sample then stage order.
std::string metrics_csv(const std::vector<SampleRecord>& samples);
nlohmann::json metrics_json(const RunRecord& run);
// A sample's record, lossless (exact doubles, non-finite values as "inf"/"-inf"/"nan" strings):
// how a worker process hands its result to the runner, and the sample folder's
// .voxpress-sample.json from which --resume takes a finished sample.
nlohmann::json sample_record_json(const SampleRecord& s);
SampleRecord sample_record_from_json(const nlohmann::json& j);  // throws nlohmann::json::exception
// Writes metrics.csv and metrics.json into run_dir, each atomically.
void write_metrics(const std::filesystem::path& run_dir, const RunRecord& run);

std::string utc_timestamp();  // "2026-11-25T15:04:05Z"
// The voxpress version compiled into this library.
std::string voxpress_version();

}  // namespace vp
